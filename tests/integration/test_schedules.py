"""Cron schedules (DBOS's create_schedule and @DBOS.scheduled), fired by the workers.

The session's worker keeps time like any worker: its pass fires every due tick as a
workflow ``sched-{name}-{tick ISO}``. Schedules here tick every second (6-field cron);
the assertions allow for slow passes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from celery_durable import DBOS, DBOSConfiguredInstance, Queue
from celery_durable.error import DBOSException
from celery_durable.store.migrations import SCHEMA
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

EVERY_SECOND = "* * * * * *"

# Runs of each tick workflow's body step, by workflow id; and what each run received.
runs: Counter[str] = Counter()
received: dict[str, tuple[Any, Any]] = {}
_lock = threading.Lock()

SCHEDULED_QUEUE = Queue(TEST_QUEUE)


@DBOS.step()
def note_run(workflow_id: str, first: Any, second: Any) -> None:
    with _lock:
        runs[workflow_id] += 1
        received[workflow_id] = (first, second)


@DBOS.workflow()
def on_tick(scheduled_time: dt.datetime, context: Any) -> str:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    note_run(workflow_id, scheduled_time, context)
    return scheduled_time.isoformat()


# Decorated with @DBOS.scheduled in its test (at import it would tick through every
# other test module of the session).
@DBOS.workflow()
def decorated_tick(scheduled_time: dt.datetime, actual_time: dt.datetime) -> None:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    note_run(workflow_id, scheduled_time, actual_time)


def not_a_workflow(scheduled_time: dt.datetime, context: Any) -> None:
    pass


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tick_ids(name: str) -> list[str]:
    """The tick workflows of a schedule (not triggered ones), oldest first."""
    with psycopg.connect(DATABASE_URL) as connection:
        rows = connection.execute(
            f"SELECT workflow_uuid FROM {SCHEMA}.workflow_status "
            "WHERE starts_with(workflow_uuid, %s) AND NOT starts_with(workflow_uuid, %s) "
            "ORDER BY workflow_uuid",
            (f"sched-{name}-", f"sched-{name}-trigger-"),
        ).fetchall()
    return [row[0] for row in rows]


def tick_time(name: str, workflow_id: str) -> dt.datetime:
    return dt.datetime.fromisoformat(workflow_id.removeprefix(f"sched-{name}-"))


def finished(workflow_ids: list[str]) -> bool:
    with _lock:
        return all(runs[i] >= 1 for i in workflow_ids)


def simulate_downtime(name: str, *, missed_seconds: int) -> dt.datetime:
    """As if no worker had run for a minute: the last pass was long ago and the
    schedule's next tick ``missed_seconds`` ago. Returns the present."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    now_ms = int(now.timestamp() * 1000)
    with psycopg.connect(DATABASE_URL) as connection:
        connection.execute(
            f"UPDATE {SCHEMA}.schedule_clock SET passed_at_epoch_ms = %s",
            (now_ms - 60_000,),
        )
        connection.execute(
            f"UPDATE {SCHEMA}.workflow_schedules SET next_fire_epoch_ms = %s "
            "WHERE schedule_name = %s",
            (now_ms - missed_seconds * 1000, name),
        )
    return now


def test_ticks_fire_on_the_worker_with_the_tick_as_their_id() -> None:
    name = unique("every-second")
    DBOS.create_schedule(
        schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND, context={"k": [1, 2]}
    )
    try:
        wait_until(lambda: len(tick_ids(name)) >= 3, 20, "three ticks")
        ids = tick_ids(name)[:3]
        wait_until(lambda: finished(ids), 20, "the ticks' runs")
        times = [tick_time(name, i) for i in ids]
        for workflow_id, tick in zip(ids, times, strict=True):
            # DBOS's id: sched-{name}-{scheduled time ISO}, whole seconds, UTC.
            assert workflow_id == f"sched-{name}-{tick.isoformat()}"
            assert tick.utcoffset() == dt.timedelta(0) and tick.microsecond == 0
            scheduled_time, context = received[workflow_id]
            assert scheduled_time == tick and scheduled_time.tzinfo is not None
            assert context == {"k": [1, 2]}
            assert DBOS.retrieve_workflow(workflow_id).get_result(timeout=20) == tick.isoformat()
            # No queue of its own: DBOS's internal queue, as DBOS reports a tick's.
            status = DBOS.get_workflow_status(workflow_id)
            assert status is not None and status.queue_name == "_dbos_internal_queue"
        # Consecutive seconds: no tick skipped while the worker ran.
        assert [b - a for a, b in itertools.pairwise(times)] == [dt.timedelta(seconds=1)] * 2
        listed = DBOS.get_schedule(name)
        assert listed is not None
        assert listed["status"] == "ACTIVE" and listed["workflow_name"] == on_tick.__qualname__
        assert listed["last_fired_at"] is not None
    finally:
        DBOS.delete_schedule(name)


def test_each_tick_runs_once_however_many_passes_fire_it() -> None:
    """Passes from many threads at once (each another store's pool, as several workers),
    besides the worker's own; then a pass that re-fires ticks already fired (a second
    beat working from stale state, or one restarted): each tick ran once."""
    from celery_durable.integration.schedule_keeper import ScheduleKeeper
    from celery_durable.store import SystemStore

    name = unique("once")
    DBOS.create_schedule(schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND)
    keeper = DBOS._service().runtime.operator.schedules
    stores = [SystemStore(DATABASE_URL, pool_size=1) for _ in range(4)]
    stop = time.monotonic() + 4.0

    def passes(store: SystemStore) -> None:
        other = ScheduleKeeper(DBOS._service().runtime.process, DBOS._service().runtime.starter)
        other.store = store.schedules
        while time.monotonic() < stop:
            other.fire()
            time.sleep(0.05)

    threads = [threading.Thread(target=passes, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Fire the last three ticks again: set the next tick back, as a beat would.
        fired = tick_ids(name)
        assert len(fired) >= 3
        rewind_ms = int(tick_time(name, fired[-3]).timestamp() * 1000)
        with psycopg.connect(DATABASE_URL) as connection:
            connection.execute(
                f"UPDATE {SCHEMA}.workflow_schedules SET next_fire_epoch_ms = %s "
                "WHERE schedule_name = %s",
                (rewind_ms, name),
            )
        keeper.fire()
        DBOS.pause_schedule(name)
        ids = tick_ids(name)
        wait_until(lambda: finished(ids), 30, "every tick's run")
        time.sleep(1.0)
        with _lock:
            assert all(runs[i] == 1 for i in ids), {i: runs[i] for i in ids}
        times = [tick_time(name, i) for i in ids]
        assert len(set(times)) == len(times)
        # No tick was skipped either: one per second from the first to the last.
        assert len(times) == int((times[-1] - times[0]).total_seconds()) + 1
    finally:
        DBOS.delete_schedule(name)
        for store in stores:
            store.dispose()


def test_a_restarted_worker_skips_missed_ticks_unless_backfilling(worker: Any) -> None:
    """The worker's timekeeping stops (as when every worker is down) for longer than a
    pass may be late, then starts again: the plain schedule goes on from the present,
    the backfilling one first runs every tick it missed, each once."""
    from celery_durable.integration import lifecycle
    from celery_durable.integration.schedule_keeper import LIVE_GAP_MS

    plain, backfilled = unique("restart-plain"), unique("restart-backfill")
    for name, backfill in ((plain, False), (backfilled, True)):
        DBOS.create_schedule(
            schedule_name=name,
            workflow_fn=on_tick,
            schedule=EVERY_SECOND,
            automatic_backfill=backfill,
        )
    hooks = lifecycle._hooks_by_app[worker.app]
    stopped = False
    try:
        wait_until(lambda: len(tick_ids(plain)) >= 1, 20, "a first tick")
        hooks.on_shutdown()
        stopped = True
        stopped_at = dt.datetime.now(dt.UTC)
        time.sleep(LIVE_GAP_MS / 1000 + 3)
        restarted_at = dt.datetime.now(dt.UTC)
        hooks.on_ready(worker)
        stopped = False
        wait_until(
            lambda: any(tick_time(plain, i) > restarted_at for i in tick_ids(plain)),
            20,
            "ticks after the restart",
        )
        down = [
            t
            for i in tick_ids(plain)
            if stopped_at + dt.timedelta(seconds=1) < (t := tick_time(plain, i)) < restarted_at
        ]
        assert down == []
        wait_until(
            lambda: any(tick_time(backfilled, i) > restarted_at for i in tick_ids(backfilled)),
            20,
            "the backfilling schedule's ticks",
        )
        times = [tick_time(backfilled, i) for i in tick_ids(backfilled)]
        # Every second from the first tick on: the downtime's ticks were backfilled.
        assert len(times) == int((times[-1] - times[0]).total_seconds()) + 1
        assert times[0] < stopped_at and times[-1] > restarted_at
        ids = tick_ids(backfilled)
        wait_until(lambda: finished(ids), 60, "every backfilled tick's run")
        with _lock:
            assert all(runs[i] == 1 for i in ids)
    finally:
        if stopped:
            hooks.on_ready(worker)
        DBOS.delete_schedule(plain)
        DBOS.delete_schedule(backfilled)


def test_ticks_missed_while_nothing_ran_are_not_replayed() -> None:
    name = unique("missed")
    DBOS.create_schedule(schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND)
    try:
        now = simulate_downtime(name, missed_seconds=30)
        wait_until(lambda: len(tick_ids(name)) >= 2, 20, "ticks after the restart")
        times = [tick_time(name, i) for i in tick_ids(name)]
        # Nothing from the 30 missed seconds; the schedule goes on from the present.
        assert min(times) >= now, (times, now)
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["status"] == "ACTIVE"
    finally:
        DBOS.delete_schedule(name)


def test_automatic_backfill_fires_the_missed_ticks_once() -> None:
    name = unique("backfilled")
    DBOS.create_schedule(
        schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND, automatic_backfill=True
    )
    try:
        now = simulate_downtime(name, missed_seconds=30)
        first_missed = now - dt.timedelta(seconds=30)
        wait_until(
            lambda: len([t for i in tick_ids(name) if (t := tick_time(name, i)) < now]) >= 30,
            30,
            "the 30 missed ticks",
        )
        DBOS.pause_schedule(name)
        ids = tick_ids(name)
        times = [tick_time(name, i) for i in ids]
        missed = [t for t in times if first_missed <= t < now]
        assert missed == [first_missed + dt.timedelta(seconds=k) for k in range(30)]
        wait_until(lambda: finished(ids), 60, "every backfilled tick's run")
        with _lock:
            assert all(runs[i] == 1 for i in ids)
    finally:
        DBOS.delete_schedule(name)


def test_backfill_schedule_starts_each_tick_in_the_window_once() -> None:
    name = unique("hourly")
    DBOS.create_schedule(
        schedule_name=name,
        workflow_fn=on_tick,
        schedule="0 * * * *",
        context="ctx",
        queue_name=TEST_QUEUE,
    )
    try:
        start = dt.datetime(2026, 1, 1, 0, 0)  # naive: UTC
        end = dt.datetime(2026, 1, 1, 4, 0, tzinfo=dt.UTC)
        handles = DBOS.backfill_schedule(name, start, end)
        # Both ends exclusive, as DBOS: 01:00, 02:00, 03:00.
        expected = [dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC) for h in (1, 2, 3)]
        assert [h.workflow_id for h in handles] == [
            f"sched-{name}-{t.isoformat()}" for t in expected
        ]
        assert [h.get_result(timeout=30) for h in handles] == [t.isoformat() for t in expected]
        assert handles[0].get_status().queue_name == TEST_QUEUE
        again = DBOS.backfill_schedule(name, start, end)
        assert [h.workflow_id for h in again] == [h.workflow_id for h in handles]
        time.sleep(1.0)
        with _lock:
            assert [runs[h.workflow_id] for h in handles] == [1, 1, 1]
            assert received[handles[0].workflow_id] == (expected[0], "ctx")
    finally:
        DBOS.delete_schedule(name)


def test_pause_resume_trigger_and_delete() -> None:
    name = unique("operated")
    DBOS.create_schedule(schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND)
    try:
        wait_until(lambda: len(tick_ids(name)) >= 1, 20, "a first tick")
        DBOS.pause_schedule(name)
        paused_at = dt.datetime.now(dt.UTC)
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["status"] == "PAUSED"
        assert name in [s["schedule_name"] for s in DBOS.list_schedules(status="PAUSED")]
        assert name not in [s["schedule_name"] for s in DBOS.list_schedules(status="ACTIVE")]
        time.sleep(3.0)
        # A pass in flight when it paused may add one tick; none after that.
        assert all(tick_time(name, i) <= paused_at for i in tick_ids(name))

        handle = DBOS.trigger_schedule(name)
        assert handle.workflow_id.startswith(f"sched-{name}-trigger-")
        triggered_at = dt.datetime.fromisoformat(
            handle.workflow_id.removeprefix(f"sched-{name}-trigger-")
        )
        assert handle.get_result(timeout=20) == triggered_at.isoformat()

        DBOS.resume_schedule(name)
        resumed_at = dt.datetime.now(dt.UTC)
        wait_until(
            lambda: any(tick_time(name, i) > resumed_at for i in tick_ids(name)),
            20,
            "ticks after resume",
        )
        # The ticks of the pause were not replayed.
        assert not [
            t
            for i in tick_ids(name)
            if paused_at + dt.timedelta(seconds=1) < (t := tick_time(name, i)) < resumed_at
        ]

        DBOS.delete_schedule(name)
        deleted_at = dt.datetime.now(dt.UTC)
        assert DBOS.get_schedule(name) is None
        time.sleep(2.5)
        assert all(tick_time(name, i) <= deleted_at for i in tick_ids(name))
        # Unknown names: pause, resume and delete do nothing (as DBOS); trigger and
        # backfill say so.
        DBOS.pause_schedule(name)
        DBOS.resume_schedule(name)
        DBOS.delete_schedule(name)
        with pytest.raises(DBOSException, match="does not exist"):
            DBOS.trigger_schedule(name)
        with pytest.raises(DBOSException, match="does not exist"):
            DBOS.backfill_schedule(name, paused_at, resumed_at)
    finally:
        DBOS.delete_schedule(name)


def test_the_decorator_form_runs_with_scheduled_and_actual_time() -> None:
    """``@DBOS.scheduled`` above ``@DBOS.workflow()``; applied here after DBOS is
    configured, so the worker's next pass writes the schedule (at import time,
    ``DBOS(...)`` and ``DBOS.launch()`` write it)."""
    name = decorated_tick.__qualname__
    assert DBOS.scheduled("*/2 * * * * *")(decorated_tick) is decorated_tick
    try:
        wait_until(lambda: len(tick_ids(name)) >= 2, 20, "two decorated ticks")
        ids = tick_ids(name)[:2]
        wait_until(lambda: finished(ids), 20, "their runs")
        for workflow_id in ids:
            tick = tick_time(name, workflow_id)
            # DBOS 2.x's id: sched-{workflow name}-{scheduled time ISO}.
            assert workflow_id == f"sched-{name}-{tick.isoformat()}"
            assert tick.second % 2 == 0
            scheduled_time, actual_time = received[workflow_id]
            assert scheduled_time == tick
            assert isinstance(actual_time, dt.datetime) and actual_time >= tick
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["schedule"] == "*/2 * * * * *"
        assert schedule["workflow_name"] == name
        # DBOS.launch() writes it again unchanged (the next tick does not move).
        DBOS.launch()
        again = DBOS.get_schedule(name)
        assert again is not None and again["schedule_id"] == schedule["schedule_id"]
        with pytest.raises(DBOSException, match="Invalid cron"):
            DBOS.scheduled("every day")
        with pytest.raises(DBOSException, match="not registered"):
            DBOS.scheduled("* * * * *")(not_a_workflow)
    finally:
        DBOS._scheduled_workflows.pop(name, None)
        DBOS._service().runtime.operator.schedules.decorated.pop(name, None)
        DBOS.delete_schedule(name)


def test_bad_input_is_a_clear_error_and_writes_nothing() -> None:
    before = {s["schedule_name"] for s in DBOS.list_schedules()}
    name = unique("bad")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"schedule": "not a cron"}, "Invalid cron schedule: 'not a cron'"),
        ({"schedule": "* * *"}, "Invalid cron"),
        ({"schedule": "61 * * * *"}, "Invalid cron"),
        ({"workflow_fn": not_a_workflow}, "not registered"),
        ({"cron_timezone": "Mars/Olympus"}, "Invalid timezone"),
        ({"queue_name": "no-such-queue"}, "Queue 'no-such-queue' is not declared"),
        ({"context": object()}, "serializ"),
        ({"schedule_name": ""}, "schedule_name"),
    ]
    for overrides, message in cases:
        arguments: dict[str, Any] = {
            "schedule_name": name,
            "workflow_fn": on_tick,
            "schedule": EVERY_SECOND,
        } | overrides
        with pytest.raises(DBOSException, match=message):
            DBOS.create_schedule(**arguments)
    assert {s["schedule_name"] for s in DBOS.list_schedules()} == before
    DBOS.create_schedule(
        schedule_name=name, workflow_fn=on_tick, schedule="0 0 1 1 *", cron_timezone="Asia/Tokyo"
    )
    try:
        with pytest.raises(DBOSException, match=f"Schedule '{name}' already exists"):
            DBOS.create_schedule(schedule_name=name, workflow_fn=on_tick, schedule=EVERY_SECOND)
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["schedule"] == "0 0 1 1 *"
        # The next tick is read in the schedule's zone: midnight in Tokyo.
        next_fire = dt.datetime.fromisoformat(schedule["next_fire_at"])
        assert next_fire.astimezone(dt.timezone(dt.timedelta(hours=9))).hour == 0
    finally:
        DBOS.delete_schedule(name)


# -- the command line ------------------------------------------------------------------


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CELERY_DURABLE_DATABASE_URL": DATABASE_URL,
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
    }
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "schedules", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_the_schedules_commands() -> None:
    name = unique("cli")
    # Without CELERY_DURABLE_IMPORTS the CLI routes by the schedule's queue (or the
    # default queue of a plain Celery app, as DBOSClient): name the workers' queue.
    DBOS.create_schedule(
        schedule_name=name,
        workflow_fn=on_tick,
        schedule="0 * * * *",
        context={"from": "cli"},
        queue_name=TEST_QUEUE,
    )
    try:
        listed = json.loads(cli("list", "--prefix", name, "--json").stdout)
        assert [(s["schedule_name"], s["status"], s["context"]) for s in listed] == [
            (name, "ACTIVE", {"from": "cli"})
        ]
        assert name in cli("list").stdout

        assert json.loads(cli("pause", name, "--json").stdout)["status"] == "PAUSED"
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["status"] == "PAUSED"
        paused = json.loads(cli("list", "--status", "PAUSED", "--json").stdout)
        assert name in [s["schedule_name"] for s in paused]
        assert "Resumed" in cli("resume", name).stdout
        schedule = DBOS.get_schedule(name)
        assert schedule is not None and schedule["status"] == "ACTIVE"

        # The CLI has no workflow code: it starts the ticks by name (the worker runs them).
        triggered = json.loads(cli("trigger", name, "--json").stdout)["workflow_id"]
        assert triggered.startswith(f"sched-{name}-trigger-")
        assert DBOS.retrieve_workflow(triggered).get_result(timeout=30)
        filled = json.loads(
            cli(
                "backfill",
                name,
                "--start",
                "2026-02-01T00:00:00",
                "--end",
                "2026-02-01T02:30:00+00:00",
                "--json",
            ).stdout
        )["workflow_ids"]
        assert filled == [
            f"sched-{name}-2026-02-01T01:00:00+00:00",
            f"sched-{name}-2026-02-01T02:00:00+00:00",
        ]
        for workflow_id in filled:
            assert DBOS.retrieve_workflow(workflow_id).get_result(timeout=30)

        missing = cli("pause", "no-such-schedule", check=False)
        assert missing.returncode != 0
        assert "Schedule 'no-such-schedule' does not exist" in missing.stderr
        bad = cli("backfill", name, "--start", "yesterday", "--end", "today", check=False)
        assert bad.returncode != 0 and "ISO-8601" in bad.stderr
    finally:
        DBOS.delete_schedule(name)


@DBOS.workflow()
def operates_schedules(name: str) -> list[Any]:
    seen: list[Any] = []
    DBOS.create_schedule(
        schedule_name=name, workflow_fn=on_tick, schedule="0 0 1 1 *", context={"from": "wf"}
    )
    try:
        DBOS.create_schedule(schedule_name=name, workflow_fn=on_tick, schedule="0 0 1 1 *")
    except DBOSException as error:
        seen.append(type(error).__name__)
    seen.append([s["context"] for s in DBOS.list_schedules(schedule_name_prefix=name)])
    schedule = DBOS.get_schedule(name)
    seen.append(None if schedule is None else schedule["status"])
    seen.append(DBOS.pause_schedule(name))
    seen.append(DBOS.resume_schedule(name))
    DBOS.delete_schedule(name)
    seen.append(DBOS.get_schedule(name))
    return seen


def test_workflow_code_operates_schedules_as_recorded_operations() -> None:
    """As in DBOS: each call is an operation of the workflow (its value or its error
    recorded), and a replay reads the record instead of acting again."""
    name = unique("from-workflow")
    handle = DBOS.start_workflow(operates_schedules, name)
    expected = ["DBOSException", [{"from": "wf"}], "ACTIVE", None, None, None]
    assert handle.get_result(timeout=30) == expected
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    assert [s["function_name"] for s in steps] == [
        "DBOS.createSchedule",
        "DBOS.createSchedule",
        "DBOS.listSchedules",
        "DBOS.getSchedule",
        "DBOS.pauseSchedule",
        "DBOS.resumeSchedule",
        "DBOS.deleteSchedule",
        "DBOS.getSchedule",
    ]
    assert isinstance(steps[1]["error"], DBOSException)
    # Every operation replayed from its record: the schedule is not created again.
    forked = DBOS.fork_workflow(handle.workflow_id, max(s["function_id"] for s in steps) + 1)
    assert forked.get_result(timeout=30) == expected
    assert DBOS.get_schedule(name) is None
    # apply, trigger and backfill still refuse to run in workflow code, as DBOS's do.
    with pytest.raises(DBOSException, match="cannot be called from within a workflow"):
        DBOS.start_workflow(applies_schedules).get_result(timeout=30)


@DBOS.workflow()
def applies_schedules() -> None:
    DBOS.apply_schedules([])


@DBOS.dbos_class()
class ScheduledOwner(DBOSConfiguredInstance):
    @DBOS.workflow()
    def instance_tick(self, scheduled_time: dt.datetime, context: Any) -> None:
        pass


def test_a_configured_instances_method_cannot_be_scheduled() -> None:
    owner = ScheduledOwner("schedules-owner")
    for workflow_fn in (owner.instance_tick, ScheduledOwner.instance_tick):
        with pytest.raises(DBOSException, match="Configured instance methods cannot be used"):
            DBOS.create_schedule(
                schedule_name=unique("instance"), workflow_fn=workflow_fn, schedule=EVERY_SECOND
            )


@DBOS.dbos_class(class_name="ScheduledByClass")
class ScheduledByClass:
    @classmethod
    @DBOS.workflow()
    def class_tick(cls, scheduled_time: dt.datetime, context: Any) -> str:
        return f"{cls.__name__} {context}"


def test_a_class_method_runs_on_its_class_and_lists_the_class_name() -> None:
    name = unique("class-method")
    DBOS.create_schedule(
        schedule_name=name,
        workflow_fn=ScheduledByClass.class_tick,
        schedule="0 0 1 1 *",
        context="ctx",
    )
    try:
        schedule = DBOS.get_schedule(name)
        assert schedule is not None
        assert schedule["workflow_class_name"] == "ScheduledByClass"
        # The tick's arguments start with the class, as a call of the method does.
        assert DBOS.trigger_schedule(name).get_result(timeout=30) == "ScheduledByClass ctx"
        start = dt.datetime(2025, 12, 31, tzinfo=dt.UTC)
        (tick,) = DBOS.backfill_schedule(name, start, start + dt.timedelta(days=2))
        assert tick.get_result(timeout=30) == "ScheduledByClass ctx"
        on_tick_schedule = unique("plain")
        DBOS.create_schedule(
            schedule_name=on_tick_schedule, workflow_fn=on_tick, schedule="0 0 1 1 *"
        )
        plain = DBOS.get_schedule(on_tick_schedule)
        assert plain is not None and plain["workflow_class_name"] is None
        DBOS.delete_schedule(on_tick_schedule)
    finally:
        DBOS.delete_schedule(name)


def test_a_context_the_code_cannot_read_is_listed_as_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As DBOS: listing does not fail for every schedule because one context (written
    by older code) can no longer be read; that one comes back as its text, warned of."""
    good, bad = unique("readable"), unique("unreadable")
    for name in (good, bad):
        DBOS.create_schedule(
            schedule_name=name, workflow_fn=on_tick, schedule="0 0 1 1 *", context={"n": name}
        )
    try:
        with psycopg.connect(DATABASE_URL) as connection:
            connection.execute(
                f"UPDATE {SCHEMA}.workflow_schedules SET context = %s WHERE schedule_name = %s",
                ("{not json", bad),
            )
        with caplog.at_level("WARNING", "dbos"):
            listed = {s["schedule_name"]: s["context"] for s in DBOS.list_schedules()}
            fetched = DBOS.get_schedule(bad)
        assert listed[good] == {"n": good}
        assert listed[bad] == "{not json"
        assert fetched is not None and fetched["context"] == "{not json"
        assert f"could not be deserialized for schedule {bad}" in caplog.text
    finally:
        DBOS.delete_schedule(good)
        DBOS.delete_schedule(bad)
