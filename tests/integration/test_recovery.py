"""Recovery needs no beat: the workers' own sweep brings every interrupted workflow back.

Real PostgreSQL, real Redis, real ``celery worker`` subprocesses of ``tests.integration.fault_app``
started without beat; nothing here calls the CLI or ``DBOS.recover()``. A workflow is
SIGKILLed (the worker's whole process group) in each state it can wait in, a fresh
worker is started, and the workflow must finish with no step attempt lost and none
repeated except the one the kill interrupted. Then the fleet-wide sweep lock, and what
a warm shutdown does with the countdown messages a Redis worker holds.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from celery import Celery

from celery_durable.integration.recovery import recover
from celery_durable.store import NewWorkflow, SystemStore
from celery_durable.store.migrations.v4 import SWEEP_LOCK_KEY
from tests.integration.test_faults import (
    FAULT_DATABASE_URL,
    REDIS_URL,
    Faults,
    Worker,
    _faults,
    fault_database,
    wait_until,
)

__all__ = ["fault_database"]  # a fixture used below

# Short settings so that every case takes seconds: sweep every 1 s, a delivery is
# overdue 3 s after it was due, a flaky step's backoff is 1 s.
FAST = {
    "CD_FAULT_SWEEP_SECONDS": "1",
    "CD_FAULT_GRACE_SECONDS": "3",
    "CD_FAULT_BACKOFF_SECONDS": "1",
}
# Generous: these tests prove that recovery happens, not how fast (see bench/).
RESULT_TIMEOUT = 120.0
STATE_TIMEOUT = 60.0


@pytest.fixture
def recovery(fault_database: str, tmp_path: Path) -> Iterator[Faults]:
    yield from _faults(REDIS_URL, tmp_path)


def workflow_row(faults: Faults, workflow_id: str) -> dict[str, Any]:
    cursor = faults.db.execute(
        "SELECT status, execution_active, dispatch_parked, next_dispatch_at_epoch_ms, "
        "created_at_epoch_ms, recovery_attempts "
        "FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    )
    row = cursor.fetchone()
    assert row is not None, workflow_id
    columns = [column.name for column in cursor.description or []]
    return dict(zip(columns, row, strict=True))


def recovered(faults: Faults, workflow_id: str, since: int = 0) -> list[str]:
    """Why the workers' sweeps published ``workflow_id`` again, in order, according to
    the workers' log from character ``since`` on."""
    pattern = rf"Recovery: published workflow {re.escape(workflow_id)} \(\S+\) again: (.+)"
    return re.findall(pattern, faults.worker_log()[since:])


def start_ready_worker(faults: Faults, **env: str) -> Worker:
    """Starts a worker without beat and waits until it consumes."""
    ready = faults.worker_log().count(" ready.")
    worker = faults.start_worker(beat=False, **env)
    wait_until(
        lambda: faults.worker_log().count(" ready.") > ready or worker.process.poll() is not None,
        STATE_TIMEOUT,
        "the worker to be ready",
    )
    assert worker.process.poll() is None, faults.worker_log()[-3000:]
    return worker


def steps_of(faults: Faults, workflow_id: str) -> list[dict[str, Any]]:
    return list(faults.client.list_workflow_steps(workflow_id))


def flaky_attempts(faults: Faults, workflow_id: str) -> int:
    (flaky,) = [
        step
        for step in steps_of(faults, workflow_id)
        if step["function_name"] == "fails_first_attempt"
    ]
    return int(flaky["attempts"])


# -- 1. every waiting state: SIGKILL, then a fresh worker without beat --------------------


@dataclass(frozen=True)
class State:
    """A state ``fault_app.survives(name)`` is SIGKILLed in."""

    name: str
    # Worker settings (both workers), on top of FAST.
    env: dict[str, str] = field(default_factory=dict)
    # A gated step (fault_app.gated) held closed until the worker is dead.
    gate: str | None = None
    # The workflow's side effects beyond the common ones (see test below).
    extra_effects: dict[str, int] = field(default_factory=dict)
    # Recovery attempts charged to the workflow (1: it was executing when killed).
    recovery_attempts: int = 0
    # Why a fresh worker's sweep publishes the workflow again (None: it does not; a
    # child's completion wakes it).
    reason: str | None = "delivery overdue"


def _running_step(faults: Faults, workflow_id: str) -> bool:
    return faults.effects(workflow_id)["step"] == 1 and bool(
        workflow_row(faults, workflow_id)["execution_active"]
    )


def _waiting(faults: Faults, workflow_id: str, count: int, name: str) -> bool:
    # Released (not executing) with `count` operations recorded, the last one `name`.
    steps = steps_of(faults, workflow_id)
    row = workflow_row(faults, workflow_id)
    return (
        len(steps) == count
        and steps[-1]["function_name"] == name
        and row["status"] == "PENDING"
        and not row["execution_active"]
    )


def _in_backoff(faults: Faults, workflow_id: str, *, parked: bool) -> bool:
    if not _waiting(faults, workflow_id, 2, "fails_first_attempt"):
        return False
    flaky = steps_of(faults, workflow_id)[1]
    row = workflow_row(faults, workflow_id)
    return (
        flaky["attempts"] == 1
        and flaky["completed_at_epoch_ms"] is None
        and bool(row["dispatch_parked"]) is parked
    )


def _in_queue_wait(faults: Faults, workflow_id: str) -> bool:
    # Still ENQUEUED, and its queue has turned it away at least once.
    row = workflow_row(faults, workflow_id)
    return row["status"] == "ENQUEUED" and bool(
        row["next_dispatch_at_epoch_ms"] > row["created_at_epoch_ms"]
    )


def _child_of(faults: Faults, workflow_id: str) -> str | None:
    steps = steps_of(faults, workflow_id)
    return steps[1]["child_workflow_id"] if len(steps) >= 2 else None


def _waiting_for_child(faults: Faults, workflow_id: str) -> bool:
    child_id = _child_of(faults, workflow_id)
    # The child's start, then the DBOS.getResult the parent waits in (as DBOS records).
    return (
        child_id is not None
        and _waiting(faults, workflow_id, 3, "DBOS.getResult")
        and steps_of(faults, workflow_id)[2]["completed_at_epoch_ms"] is None
        and faults.effects(child_id)["child"] == 1
        and bool(workflow_row(faults, child_id)["execution_active"])
    )


IN_STATE: dict[str, Callable[[Faults, str], bool]] = {
    "step": _running_step,
    "backoff": lambda faults, wid: _in_backoff(faults, wid, parked=False),
    "sleep": lambda faults, wid: _waiting(faults, wid, 2, "DBOS.sleep"),
    "queue": _in_queue_wait,
    "child": _waiting_for_child,
    "parked": lambda faults, wid: _in_backoff(faults, wid, parked=True),
}

STATES = [
    # (a) Running a step: its owner died; the next sweep publishes it at once.
    State("step", gate="step", extra_effects={"step": 2}, recovery_attempts=1, reason="owner died"),
    # (b) In a step's backoff: its countdown message is stranded in the dead worker's
    # Redis `unacked` (visibility timeout: 1 hour); the sweep publishes it after grace.
    State("backoff", env={"CD_FAULT_BACKOFF_SECONDS": "4"}),
    # (c) In a durable sleep: likewise.
    State("sleep", env={"CD_FAULT_SLEEP_SECONDS": "4"}),
    # (d) In a queue wait: a concurrency-1 queue whose slot a gated workflow holds.
    State("queue", env={"CD_FAULT_QUEUE_LIMITS": '{"concurrency": 1}'}, gate="occupant"),
    # (e) Waiting for a child that was running a step: the child's owner died; once
    # published again and finished, the child wakes its parent.
    State("child", gate="child", reason=None),
    # (f) Parked: a 4 s backoff, longer than the 2 s the broker may hold (half the
    # 4 s visibility timeout), waits in PostgreSQL; the sweep publishes it when due.
    State(
        "parked",
        env={"CD_FAULT_VISIBILITY_TIMEOUT": "4", "CD_FAULT_BACKOFF_SECONDS": "4"},
        reason="parked delay due",
    ),
]


@pytest.mark.parametrize("state", STATES, ids=lambda state: state.name)
def test_a_fresh_worker_without_beat_finishes_a_workflow_killed_in_each_state(
    recovery: Faults, state: State
) -> None:
    faults = recovery
    env = {**FAST, **state.env}
    if state.gate is not None:
        faults.add_trigger(state.gate, "hold")
    # Ready before anything is enqueued: its start-up sweep must find nothing overdue.
    first = start_ready_worker(faults, **env)
    occupant = None
    if state.name == "queue":
        occupant = faults.enqueue("gated_occupant")
        wait_until(
            lambda: faults.effects(occupant.workflow_id)["occupant"] == 1,
            STATE_TIMEOUT,
            "the occupant to take the queue's only slot",
        )
    handle = faults.enqueue("survives", state.name)
    workflow_id = handle.workflow_id
    broker = redis.Redis.from_url(faults.broker_url)

    def in_state() -> bool:
        # Every message the worker was given is its own (executing, or held for a
        # countdown): none waits in the queue for the next worker.
        return IN_STATE[state.name](faults, workflow_id) and broker.llen(faults.queue) == 0

    wait_until(in_state, STATE_TIMEOUT, f"state {state.name}")
    first.kill()
    # Nothing sweeps while no worker runs: the kill must have left it in that state,
    # its messages stranded in Redis's `unacked` for the 1 h visibility timeout.
    assert in_state(), f"the kill missed state {state.name}"
    since = len(faults.worker_log())
    child_id = _child_of(faults, workflow_id) if state.name == "child" else None
    if state.gate is not None:
        faults.db.execute("DELETE FROM fault_triggers WHERE point = %s", (state.gate,))

    faults.start_worker(beat=False, **env)
    assert handle.get_result(timeout=RESULT_TIMEOUT) == [0, 1, 2]

    # The flaky step failed once and succeeded once, whatever the kill interrupted: its
    # attempt count survived, and no attempt ran twice.
    assert faults.effects(workflow_id) == Counter(
        {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1, **state.extra_effects}
    )
    assert flaky_attempts(faults, workflow_id) == 2
    assert handle.get_status().recovery_attempts == state.recovery_attempts
    if state.reason is not None:
        assert recovered(faults, workflow_id, since)[:1] == [state.reason]
    if occupant is not None:
        assert occupant.get_result(timeout=RESULT_TIMEOUT) == "occupant"
        # The gated step was interrupted by the kill: it ran again, once.
        assert faults.effects(occupant.workflow_id) == Counter({"occupant": 2})
        assert occupant.get_status().recovery_attempts == 1
        assert recovered(faults, occupant.workflow_id, since)[:1] == ["owner died"]
    if child_id is not None:
        child = faults.client.retrieve_workflow(child_id)
        assert child.get_result(timeout=RESULT_TIMEOUT) == "child"
        assert faults.effects(child_id) == Counter({"child": 2})
        assert child.get_status().recovery_attempts == 1
        assert recovered(faults, child_id, since)[:1] == ["owner died"]


# -- 2. one sweep at a time, fleet-wide ----------------------------------------------------


def _due_workflows(store: SystemStore, count: int, queue: str) -> list[str]:
    """``count`` ENQUEUED workflows whose delivery is long overdue."""
    ids = [f"due-{index}-{uuid.uuid4().hex[:8]}" for index in range(count)]
    for workflow_id in ids:
        store.workflows.insert_workflow(
            NewWorkflow(
                workflow_uuid=workflow_id,
                name="steps",
                status="ENQUEUED",
                queue_name=queue,
                inputs='{"args": [1], "kwargs": {}}',
                authenticated_user=None,
                max_recovery_attempts=100,
            )
        )
    _make_overdue(ids)
    return ids


def _make_overdue(ids: list[str]) -> None:
    with psycopg.connect(FAULT_DATABASE_URL, autocommit=True) as connection:
        connection.execute(
            "UPDATE celery_durable.workflow_status SET next_dispatch_at_epoch_ms = 0 "
            "WHERE workflow_uuid = ANY(%s)",
            (ids,),
        )


def test_no_sweep_publishes_anything_while_another_holds_the_sweep_lock(
    fault_database: str,
) -> None:
    queue = f"sweep-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    store = SystemStore(fault_database, pool_size=1)
    app = Celery("sweeper", broker=REDIS_URL)
    try:
        (workflow_id,) = _due_workflows(store, 1, queue)
        with psycopg.connect(fault_database, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK_KEY,))
            # Any grace: the workflow is overdue by decades.
            assert recover(store, app, grace_seconds=0) == []
            assert store.operations.recover_workflows(grace_ms=0, limit=10) == []
            assert broker.llen(queue) == 0
            holder.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK_KEY,))
        (redispatch,) = recover(store, app, grace_seconds=0)
        assert redispatch.workflow_uuid == workflow_id
        assert redispatch.reason == "delivery overdue"
        assert broker.llen(queue) == 1  # published once
    finally:
        store.dispose()
        app.close()


def test_live_executions_do_not_use_up_a_sweeps_batch(fault_database: str) -> None:
    # Five running workflows whose owners are alive (their fences held here), then one
    # lost delivery: a sweep limited to five must still find the lost one.
    store = SystemStore(fault_database, pool_size=1)
    running = _due_workflows(store, 5, "live")
    (lost,) = _due_workflows(store, 1, "live")
    with psycopg.connect(fault_database, autocommit=True) as owner:
        owner.execute(
            "UPDATE celery_durable.workflow_status SET status = 'PENDING', "
            "execution_active = true, next_dispatch_at_epoch_ms = -1 "
            "WHERE workflow_uuid = ANY(%s)",
            (running,),
        )
        for workflow_id in running:
            owner.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (workflow_id,))
        try:
            redispatched = store.operations.recover_workflows(grace_ms=0, limit=5)
        finally:
            store.dispose()
    assert [r.workflow_uuid for r in redispatched] == [lost]


def _sweep_concurrently(stores: list[SystemStore], count: int) -> list[str]:
    """Every store sweeps at once, in small batches, until ``count`` were returned."""
    returned: list[list[str]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))

    def sweep(store: SystemStore, mine: list[str]) -> None:
        start.wait()
        deadline = time.monotonic() + 60
        # Small batches, so that the sweeps overlap many times.
        while sum(map(len, returned)) < count and time.monotonic() < deadline:
            mine.extend(
                r.workflow_uuid
                for r in store.operations.recover_workflows(grace_ms=60_000, limit=7)
            )

    threads = [
        threading.Thread(target=sweep, args=(store, mine))
        for store, mine in zip(stores, returned, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return [workflow_id for mine in returned for workflow_id in mine]


def test_concurrent_sweeps_never_return_one_workflow_twice(fault_database: str) -> None:
    # Two sweepers (as two workers), 200 overdue workflows; three rounds.
    stores = [SystemStore(fault_database, pool_size=1) for _ in range(2)]
    try:
        ids = _due_workflows(stores[0], 200, "sweep")
        for _ in range(3):
            every = _sweep_concurrently(stores, len(ids))
            assert [wid for wid, n in Counter(every).items() if n > 1] == []
            assert sorted(every) == sorted(ids)
            _make_overdue(ids)  # due again for the next round
    finally:
        for store in stores:
            store.dispose()


# -- 3. a warm shutdown gives a Redis worker's countdown messages back -------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_warm_shutdown_returns_a_held_countdown_message_to_the_queue(
    recovery: Faults, signum: signal.Signals
) -> None:
    faults = recovery
    broker = redis.Redis.from_url(faults.broker_url)
    # A grace period of an hour: no sweep publishes anything during this test.
    env = {**FAST, "CD_FAULT_GRACE_SECONDS": "3600", "CD_FAULT_BACKOFF_SECONDS": "10"}
    first = start_ready_worker(faults, **env)
    handle = faults.enqueue("with_backoff")
    workflow_id = handle.workflow_id

    def holds_the_countdown() -> bool:
        steps = steps_of(faults, workflow_id)
        return (
            len(steps) == 2
            and steps[1]["completed_at_epoch_ms"] is None
            and broker.hlen("unacked") == 1
            and broker.llen(faults.queue) == 0
        )

    wait_until(holds_the_countdown, STATE_TIMEOUT, "the worker to hold the 10 s countdown")
    if signum == signal.SIGTERM:
        os.kill(first.process.pid, signal.SIGTERM)  # the main process: a warm shutdown
        first.process.wait(timeout=60)
    else:
        first.kill()
    # Nothing ran meanwhile: step 0 and the failed attempt only.
    assert len(faults.effects(workflow_id)) == 2

    if signum == signal.SIGTERM:
        assert broker.hlen("unacked") == 0
        assert broker.llen(faults.queue) == 1
        faults.start_worker(beat=False, **env)
        assert handle.get_result(timeout=RESULT_TIMEOUT) == [0, 1, 2]
        assert faults.effects(workflow_id) == Counter(
            {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1}
        )
        assert flaky_attempts(faults, workflow_id) == 2
        assert recovered(faults, workflow_id) == []  # the restored message did it
    else:
        # The negative control: the message is stranded until the visibility timeout.
        assert broker.hlen("unacked") == 1
        assert broker.llen(faults.queue) == 0
        due_ms = workflow_row(faults, workflow_id)["next_dispatch_at_epoch_ms"]
        start_ready_worker(faults, **env)
        wait_until(lambda: time.time() * 1000 > due_ms + 5000, 60, "5 s past the due time")
        assert handle.get_status().status == "PENDING"
        assert broker.hlen("unacked") == 1
        assert "1:attempt1" not in faults.effects(workflow_id)
