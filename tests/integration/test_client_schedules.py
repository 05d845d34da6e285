"""DBOSClient's schedule calls (DBOS 3.4's), and ``apply_schedules`` on both facades.

The client names the workflow; the session's worker, which has its code, fires the
schedule. The schedules are the same rows ``DBOS``'s calls read and write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from celery_durable import DBOS, ClientScheduleInput, DBOSClient, ScheduleInput
from celery_durable.error import DBOSException
from tests.conftest import DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

EVERY_SECOND = "* * * * * *"
YEARLY = "0 0 1 1 *"


@DBOS.workflow(name="client_scheduled")
def client_scheduled(scheduled_time: dt.datetime, context: Any) -> list[Any]:
    return [scheduled_time.isoformat(), context]


@DBOS.workflow(name="client_scheduled_other")
def client_scheduled_other(scheduled_time: dt.datetime, context: Any) -> str:
    return f"other:{context}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["broker", "brokerless"])
def client(request: pytest.FixtureRequest, celery_app: Celery) -> Iterator[DBOSClient]:
    """A client on the workers' Celery app (its broker and routing), and one without a
    broker (the workers' relay publishes what it starts)."""
    client = DBOSClient(DATABASE_URL, celery=celery_app if request.param == "broker" else None)
    yield client
    for schedule in client.list_schedules(schedule_name_prefix="cs-"):
        client.delete_schedule(schedule["schedule_name"])
    client.destroy()


def test_a_schedule_the_client_creates_fires_on_the_worker(client: DBOSClient) -> None:
    name = unique("cs-fires")
    client.create_schedule(
        schedule_name=name,
        workflow_name="client_scheduled",
        schedule=EVERY_SECOND,
        context={"from": "client"},
    )
    listed = client.get_schedule(name)
    assert listed is not None
    assert listed["workflow_name"] == "client_scheduled" and listed["status"] == "ACTIVE"
    assert listed["context"] == {"from": "client"}
    assert listed["application_name"] is None and listed["shard_key"] is None
    # DBOS's facade reads the same schedule.
    assert DBOS.get_schedule(name) == listed

    def ticks() -> list[Any]:
        return client.list_workflows(workflow_id_prefix=f"sched-{name}-")

    wait_until(lambda: len(ticks()) >= 1, 20, "a tick")
    tick = ticks()[0]
    result = client.retrieve_workflow(tick.workflow_id).get_result(timeout=20)
    assert result[1] == {"from": "client"}
    assert tick.workflow_id == f"sched-{name}-{result[0]}"


def test_pause_resume_list_and_delete(client: DBOSClient) -> None:
    name = unique("cs-pause")
    client.create_schedule(schedule_name=name, workflow_name="client_scheduled", schedule=YEARLY)
    client.pause_schedule(name)
    assert [s["status"] for s in client.list_schedules(schedule_name_prefix=name)] == ["PAUSED"]
    assert client.list_schedules(status="ACTIVE", schedule_name_prefix=name) == []
    client.resume_schedule(name)
    assert [
        s["status"]
        for s in client.list_schedules(workflow_name="client_scheduled")
        if s["schedule_name"] == name
    ] == ["ACTIVE"]
    # No schedule has an owning application: the filter selects every one, as DBOS's
    # does for unclaimed schedules.
    assert [
        s["schedule_name"]
        for s in client.list_schedules(application_name="any")
        if s["schedule_name"] == name
    ] == [name]
    with pytest.raises(DBOSException, match="already exists"):
        client.create_schedule(
            schedule_name=name, workflow_name="client_scheduled", schedule=YEARLY
        )
    client.delete_schedule(name)
    assert client.get_schedule(name) is None
    client.delete_schedule(name)  # nothing to delete: no error, as DBOS


def test_trigger_and_backfill_run_on_the_worker(client: DBOSClient) -> None:
    name = unique("cs-trigger")
    # The runs the client starts go to the schedule's queue (the workers consume the
    # test queue; without one, a client that lacks the workers' routing would start
    # them on Celery's default queue).
    client.create_schedule(
        schedule_name=name,
        workflow_name="client_scheduled_other",
        schedule=YEARLY,
        context=7,
        queue_name=TEST_QUEUE,
    )
    handle = client.trigger_schedule(name)
    assert handle.workflow_id.startswith(f"sched-{name}-trigger-")
    assert handle.get_result(timeout=20) == "other:7"

    start = dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC)
    end = dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)
    handles = client.backfill_schedule(name, start, end)
    expected = [dt.datetime(year, 1, 1, tzinfo=dt.UTC) for year in (2025, 2026, 2027)]
    assert [h.workflow_id for h in handles] == [f"sched-{name}-{t.isoformat()}" for t in expected]
    assert [h.get_result(timeout=20) for h in handles] == ["other:7"] * 3
    # Again: the ticks exist, nothing runs twice.
    again = client.backfill_schedule(name, start, end)
    assert [h.workflow_id for h in again] == [h.workflow_id for h in handles]
    for h in again:
        assert h.get_status().recovery_attempts <= 1
    with pytest.raises(DBOSException, match="does not exist"):
        client.trigger_schedule(unique("cs-missing"))


def test_apply_schedules_creates_and_replaces_all_or_nothing(client: DBOSClient) -> None:
    first, second = unique("cs-apply-a"), unique("cs-apply-b")
    client.apply_schedules(
        [
            {"schedule_name": first, "workflow_name": "client_scheduled", "schedule": YEARLY},
            {
                "schedule_name": second,
                "workflow_name": "client_scheduled",
                "schedule": YEARLY,
                "context": {"n": 1},
                "cron_timezone": "Europe/Paris",
            },
        ]
    )
    created = client.get_schedule(first)
    assert created is not None and created["schedule"] == YEARLY
    client.pause_schedule(first)
    replacement: list[ClientScheduleInput] = [
        {
            "schedule_name": first,
            "workflow_name": "client_scheduled_other",
            "schedule": "0 0 1 6 *",
            "context": "new",
            "automatic_backfill": True,
        }
    ]
    client.apply_schedules(replacement)
    replaced = client.get_schedule(first)
    assert replaced is not None
    # The definition is replaced; its id and status (paused) are kept, as in DBOS.
    assert replaced["workflow_name"] == "client_scheduled_other"
    assert replaced["schedule"] == "0 0 1 6 *" and replaced["context"] == "new"
    assert replaced["automatic_backfill"] is True
    assert replaced["schedule_id"] == created["schedule_id"]
    assert replaced["status"] == "PAUSED"
    assert replaced["next_fire_at"].startswith(f"{dt.datetime.now(dt.UTC).year}-06-01") or (
        replaced["next_fire_at"].startswith(f"{dt.datetime.now(dt.UTC).year + 1}-06-01")
    )
    other = client.get_schedule(second)
    assert other is not None and other["cron_timezone"] == "Europe/Paris"

    third = unique("cs-apply-c")
    bad: list[Any] = [
        {"schedule_name": third, "workflow_name": "client_scheduled", "schedule": YEARLY},
        {"schedule_name": unique("cs-apply-d"), "workflow_name": "client_scheduled"},
    ]
    with pytest.raises(DBOSException, match="Schedule entry 1 is missing required field"):
        client.apply_schedules(bad)
    with pytest.raises(DBOSException, match="Invalid cron"):
        client.apply_schedules(
            [
                {"schedule_name": third, "workflow_name": "client_scheduled", "schedule": YEARLY},
                {"schedule_name": third, "workflow_name": "x", "schedule": "61 * * * *"},
            ]
        )
    assert client.get_schedule(third) is None


def test_async_twins(client: DBOSClient) -> None:
    name = unique("cs-async")

    async def scenario() -> None:
        await client.create_schedule_async(
            schedule_name=name, workflow_name="client_scheduled", schedule=YEARLY
        )
        assert (await client.get_schedule_async(name)) is not None
        listed = await client.list_schedules_async(schedule_name_prefix=name)
        assert [s["schedule_name"] for s in listed] == [name]
        await client.apply_schedules_async(
            [{"schedule_name": name, "workflow_name": "client_scheduled", "schedule": "0 0 2 1 *"}]
        )
        got = await client.get_schedule_async(name)
        assert got is not None and got["schedule"] == "0 0 2 1 *"
        await client.delete_schedule_async(name)
        assert (await client.get_schedule_async(name)) is None

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"application_name": "billing"}, "application_name is not supported"),
        ({"shard_key": "tenant-1"}, "shard key"),
        ({"workflow_class_name": "Billing"}, "workflow_class_name is not supported"),
        ({"cron_timezone": "Mars/Olympus"}, "Invalid timezone"),
    ],
)
def test_what_cannot_be_honoured_raises_and_writes_nothing(
    client: DBOSClient, option: dict[str, Any], message: str
) -> None:
    name = unique("cs-refused")
    with pytest.raises(DBOSException, match=message):
        client.create_schedule(
            schedule_name=name, workflow_name="client_scheduled", schedule=YEARLY, **option
        )
    entry: Any = {"schedule_name": name, "workflow_name": "client_scheduled", "schedule": YEARLY}
    with pytest.raises(DBOSException, match=message):
        client.apply_schedules([{**entry, **option}])
    assert client.get_schedule(name) is None


def test_dbos_apply_schedules_takes_the_workflow_function() -> None:
    name = unique("cs-dbos-apply")
    schedules: list[ScheduleInput] = [
        {"schedule_name": name, "workflow_fn": client_scheduled, "schedule": YEARLY, "context": 1}
    ]
    try:
        DBOS.apply_schedules(schedules)
        created = DBOS.get_schedule(name)
        assert created is not None and created["workflow_name"] == "client_scheduled"
        asyncio.run(
            DBOS.apply_schedules_async(
                [{"schedule_name": name, "workflow_fn": client_scheduled_other, "schedule": YEARLY}]
            )
        )
        replaced = DBOS.list_schedules(schedule_name_prefix=name, application_name=["a", "b"])
        assert [s["workflow_name"] for s in replaced] == ["client_scheduled_other"]
        assert replaced[0]["schedule_id"] == created["schedule_id"]
        with pytest.raises(DBOSException, match="missing required field 'workflow_fn'"):
            DBOS.apply_schedules([{"schedule_name": name, "schedule": YEARLY}])  # type: ignore[typeddict-item]
        with pytest.raises(DBOSException, match="not registered"):
            DBOS.apply_schedules(
                [{"schedule_name": name, "workflow_fn": unique, "schedule": YEARLY}]
            )
    finally:
        DBOS.delete_schedule(name)
