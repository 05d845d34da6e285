"""``list_workflows`` and ``list_queued_workflows`` apply every DBOS 3.4 filter (in SQL),
on ``DBOS`` and ``DBOSClient`` and their ``_async`` twins, and ``WorkflowStatus`` carries
DBOS 3.4's fields. Every workflow here has an id starting with its test's own prefix,
so other tests' rows never match."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.core.records import INTERNAL_QUEUE_NAME, WorkflowStatus
from celery_durable.error import DBOSException, DBOSQueryTimeoutError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def client(worker: Any, celery_app: Celery) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


@pytest.fixture
def prefix() -> str:
    return f"listing-{uuid.uuid4().hex[:8]}-"


@DBOS.step()
def double(value: int) -> int:
    return value * 2


@DBOS.workflow()
def listed(value: int) -> int:
    return double(value)


@DBOS.workflow()
def listed_parent(child_id: str) -> int:
    with SetWorkflowID(child_id):
        child = DBOS.start_workflow(listed, 5)
    return child.get_result()


def ids(found: list[WorkflowStatus]) -> list[str]:
    return [w.workflow_id for w in found]


def enqueue(client: DBOSClient, workflow_id: str, **options: Any) -> str:
    handle = client.enqueue({"workflow_name": "listed", "workflow_id": workflow_id, **options}, 1)
    handle.get_result(timeout=30)
    return workflow_id


@pytest.fixture
def three(client: DBOSClient, prefix: str) -> list[str]:
    """alice's, bob's and nobody's workflow (finished, in that order)."""
    return [
        enqueue(client, f"{prefix}a", authenticated_user="alice"),
        enqueue(client, f"{prefix}b", authenticated_user="bob"),
        enqueue(client, f"{prefix}c_x"),
    ]


def test_user_prefix_status_name_and_queue_filters(
    client: DBOSClient, prefix: str, three: list[str]
) -> None:
    alice, bob, nobody = three
    mine = {"workflow_id_prefix": prefix}
    assert ids(client.list_workflows(**mine)) == three
    assert ids(client.list_workflows(user="alice", **mine)) == [alice]
    assert ids(DBOS.list_workflows(user=["alice", "bob"], **mine)) == [alice, bob]
    assert ids(client.list_workflows(user="carol", **mine)) == []
    assert ids(client.list_workflows(name=["listed", "other"], **mine)) == three
    assert ids(client.list_workflows(name="other", **mine)) == []
    assert ids(client.list_workflows(status=["SUCCESS"], **mine)) == three
    assert ids(client.list_workflows(status="ERROR", **mine)) == []
    # Enqueued without a DBOS queue: no queue_name, whatever their Celery queue.
    assert ids(client.list_workflows(queue_name=[TEST_QUEUE, "other"], **mine)) == []
    # Several prefixes: any of them; a prefix's "_" and "%" are not wildcards.
    assert ids(client.list_workflows(workflow_id_prefix=[f"{prefix}a", f"{prefix}b"])) == [
        alice,
        bob,
    ]
    assert ids(client.list_workflows(workflow_id_prefix=f"{prefix}c_")) == [nobody]
    assert ids(client.list_workflows(workflow_id_prefix=f"{prefix}_")) == []
    assert ids(client.list_workflows(workflow_id_prefix=f"{prefix}%")) == []
    # An empty list is no filter, as in DBOS, except for ids (none listed, none found).
    assert ids(client.list_workflows(user=[], **mine)) == three
    assert client.list_workflows(workflow_ids=[]) == []
    queued = enqueue(client, f"{prefix}q", queue_name=TEST_QUEUE)
    assert ids(client.list_workflows(queue_name=[TEST_QUEUE, "other"], **mine)) == [queued]
    assert ids(client.list_workflows(queue_name="other", **mine)) == []


def test_order_limit_offset_and_what_is_loaded(
    client: DBOSClient, prefix: str, three: list[str]
) -> None:
    mine = {"workflow_id_prefix": prefix}
    assert ids(client.list_workflows(sort_desc=True, **mine)) == three[::-1]
    assert ids(client.list_workflows(limit=2, offset=1, **mine)) == three[1:]
    assert ids(client.list_workflows(limit=0, **mine)) == three  # 0: no limit (DBOS)
    (loaded,) = client.list_workflows(workflow_ids=[three[0]])
    assert loaded.input == {"args": [1], "kwargs": {}} and loaded.output == 2
    (bare,) = client.list_workflows(workflow_ids=[three[0]], load_input=False, load_output=False)
    assert bare.input is None and bare.output is None and bare.status == "SUCCESS"


def test_time_and_executor_filters(client: DBOSClient, prefix: str, three: list[str]) -> None:
    mine = {"workflow_id_prefix": prefix}
    first = client.retrieve_workflow(three[0]).get_status()
    last = client.retrieve_workflow(three[2]).get_status()
    assert first.completed_at is not None and first.dequeued_at is not None
    assert first.executor_id is not None

    def iso(epoch_ms: int) -> str:
        return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).isoformat()

    assert ids(client.list_workflows(start_time=iso(last.created_at), **mine)) == [three[2]]
    assert ids(client.list_workflows(end_time=iso(first.created_at), **mine)) == [three[0]]
    assert ids(client.list_workflows(completed_before=iso(first.completed_at), **mine)) == [
        three[0]
    ]
    assert last.completed_at is not None and last.dequeued_at is not None
    assert ids(client.list_workflows(completed_after=iso(last.completed_at), **mine)) == [three[2]]
    assert ids(client.list_workflows(dequeued_after=iso(last.dequeued_at), **mine)) == [three[2]]
    assert ids(client.list_workflows(dequeued_before=iso(first.dequeued_at), **mine)) == [three[0]]
    assert ids(client.list_workflows(executor_id=[first.executor_id], **mine)) == ids(
        [w for w in client.list_workflows(**mine) if w.executor_id == first.executor_id]
    )
    assert ids(client.list_workflows(executor_id="no-such-executor", **mine)) == []


def test_parents_and_forks(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "listed_parent", "workflow_id": parent}, child).get_result(
        timeout=30
    )
    fork = client.fork_workflow(parent, 1)
    fork.get_result(timeout=30)
    mine = {"workflow_id_prefix": prefix}
    assert ids(client.list_workflows(parent_workflow_id=parent, **mine)) == [child]
    assert ids(client.list_workflows(has_parent=True, **mine)) == [child]
    assert ids(client.list_workflows(has_parent=False, **mine)) == [parent]
    assert fork.workflow_id not in ids(client.list_workflows(**mine))  # a fork's own id
    forks = client.list_workflows(forked_from=parent)
    assert ids(forks) == [fork.workflow_id] and forks[0].forked_from == parent
    assert ids(client.list_workflows(is_fork=True, workflow_ids=[parent, fork.workflow_id])) == [
        fork.workflow_id
    ]
    assert ids(client.list_workflows(is_fork=False, workflow_ids=[parent, fork.workflow_id])) == [
        parent
    ]
    assert ids(client.list_workflows(was_forked_from=True, **mine)) == [parent]
    assert ids(client.list_workflows(was_forked_from=False, **mine)) == [child]
    status = client.retrieve_workflow(parent).get_status()
    assert status.was_forked_from and status.forked_from is None


def test_queued_workflows(client: DBOSClient, prefix: str, three: list[str]) -> None:
    waiting = client.enqueue(
        {
            "workflow_name": "never_deployed",
            "workflow_id": f"{prefix}waiting",
            "queue_name": f"{prefix}nobody-consumes",
            "allow_unregistered": True,
        }
    )
    delayed = client.enqueue(
        {
            "workflow_name": "listed",
            "workflow_id": f"{prefix}delayed",
            "queue_name": TEST_QUEUE,
            "delay_seconds": 3600,
        },
        1,
    )
    mine = {"workflow_id_prefix": prefix}
    # Finished ones are not queued any more; a status filter replaces the default. The
    # three were enqueued on no DBOS queue: never listed as queued.
    finished = enqueue(client, f"{prefix}finished", queue_name=TEST_QUEUE)
    assert ids(DBOS.list_queued_workflows(**mine)) == [waiting.workflow_id, delayed.workflow_id]
    assert ids(client.list_queued_workflows(status="SUCCESS", **mine)) == [finished]
    assert ids(client.list_queued_workflows(queue_name=f"{prefix}nobody-consumes")) == [
        waiting.workflow_id
    ]
    assert ids(client.list_workflows(queues_only=True, **mine)) == [
        waiting.workflow_id,
        delayed.workflow_id,
    ]
    status = delayed.get_status()
    assert status.status == "DELAYED" and status.delay_until_epoch_ms is not None
    assert status.delay_until_epoch_ms > status.created_at + 3_000_000
    client.cancel_workflow(waiting.workflow_id)
    client.cancel_workflow(delayed.workflow_id)
    assert ids(client.list_queued_workflows(**mine)) == []


def test_queue_name_is_the_dbos_queue_and_celery_queue_the_route(
    client: DBOSClient, prefix: str
) -> None:
    # Started without a DBOS queue: queue_name None (as DBOS), the Celery queue beside it.
    with SetWorkflowID(f"{prefix}started"):
        started = DBOS.start_workflow(listed, 1)
    started.get_result(timeout=30)
    status = started.get_status()
    assert status.queue_name is None and status.celery_queue == TEST_QUEUE
    with SetWorkflowID(f"{prefix}called"):
        assert listed(2) == 4
    called = DBOS.get_workflow_status(f"{prefix}called")
    assert called is not None and called.queue_name is None and called.celery_queue
    queued = client.retrieve_workflow(enqueue(client, f"{prefix}queued", queue_name=TEST_QUEUE))
    assert queued.get_status().queue_name == TEST_QUEUE == queued.get_status().celery_queue
    # Forked or resumed without a queue: DBOS's internal queue's name, on the same route.
    fork = client.fork_workflow(started.workflow_id, 1)
    assert fork.get_result(timeout=30) == 2
    assert fork.get_status().queue_name == INTERNAL_QUEUE_NAME == "_dbos_internal_queue"
    assert fork.get_status().celery_queue == TEST_QUEUE
    parked = f"{prefix}nobody-consumes"
    onto = client.fork_workflow(started.workflow_id, 1, queue_name=parked)
    assert onto.get_status().queue_name == parked == onto.get_status().celery_queue
    client.cancel_workflow(onto.workflow_id)
    resumed = client.resume_workflow(onto.workflow_id)
    assert resumed.get_status().queue_name == INTERNAL_QUEUE_NAME
    assert resumed.get_status().celery_queue == parked  # still where it was routed
    client.cancel_workflow(onto.workflow_id)
    assert ids(client.list_queued_workflows(workflow_id_prefix=prefix)) == []
    assert ids(
        client.list_workflows(queue_name=INTERNAL_QUEUE_NAME, forked_from=started.workflow_id)
    ) == [fork.workflow_id, onto.workflow_id]


def test_async_twins(client: DBOSClient, prefix: str, three: list[str]) -> None:
    async def both() -> tuple[list[WorkflowStatus], list[WorkflowStatus]]:
        return (
            await DBOS.list_workflows_async(user="bob", workflow_id_prefix=prefix),
            await client.list_queued_workflows_async(workflow_id_prefix=prefix),
        )

    listed_bob, queued = asyncio.run(both())
    assert ids(listed_bob) == [three[1]] and queued == []


@DBOS.workflow()
def on_listed_tick(scheduled_time: dt.datetime, context: Any) -> str:
    return "ticked"


def test_schedule_name_of_a_schedules_workflows(client: DBOSClient, prefix: str) -> None:
    name = f"{prefix}schedule"
    DBOS.create_schedule(schedule_name=name, workflow_fn=on_listed_tick, schedule="0 0 1 1 *")
    try:
        tick = DBOS.trigger_schedule(name)
        assert tick.get_result(timeout=30) == "ticked"
        plain = enqueue(client, f"sched-{name}-plain")  # the id alone does not make a tick
        found = client.list_workflows(schedule_name=name)
        assert ids(found) == [tick.workflow_id] and found[0].schedule_name == name
        assert client.retrieve_workflow(plain).get_status().schedule_name is None
        assert client.list_workflows(schedule_name=[f"{prefix}other"]) == []
    finally:
        DBOS.delete_schedule(name)


def test_list_workflow_steps_pages_and_what_is_loaded(client: DBOSClient, prefix: str) -> None:
    parent = f"{prefix}parent"
    client.enqueue(
        {"workflow_name": "listed_parent", "workflow_id": parent}, f"{prefix}child"
    ).get_result(timeout=30)
    steps = DBOS.list_workflow_steps(parent)
    assert [s["function_id"] for s in steps] == list(range(1, len(steps) + 1))
    assert len(steps) >= 2 and steps[0]["child_workflow_id"] == f"{prefix}child"
    assert all(s["child_shard_key"] is None for s in steps)
    assert client.list_workflow_steps(parent, limit=1) == steps[:1]
    assert client.list_workflow_steps(parent, offset=1) == steps[1:]
    assert client.list_workflow_steps(parent, limit=1, offset=1) == steps[1:2]
    (child_step,) = client.list_workflow_steps(f"{prefix}child")
    assert child_step["output"] == 10
    (unloaded,) = asyncio.run(DBOS.list_workflow_steps_async(f"{prefix}child", load_output=False))
    assert unloaded["output"] is None and unloaded["function_name"] == child_step["function_name"]
    assert asyncio.run(client.list_workflow_steps_async(parent, limit=1)) == steps[:1]
    with pytest.raises(DBOSException, match="sharded"):
        client.list_workflow_steps(parent, shard_key="s")


def test_a_listing_past_the_observability_query_timeout_is_cancelled(
    client: DBOSClient, prefix: str
) -> None:
    # DBOS's default cap (30 s) on a DBOS's listings; a client's own, set per client.
    connections = DBOS._service().runtime.process.store.connections
    assert connections.observability_timeout_ms == 30_000
    capped = DBOSClient(DATABASE_URL, observability_query_timeout_sec=0.3)
    uncapped = DBOSClient(DATABASE_URL, observability_query_timeout_sec=0)
    try:
        enqueue(client, f"{prefix}a")
        mine = {"workflow_id_prefix": prefix}
        assert ids(capped.list_workflows(**mine)) == [f"{prefix}a"]
        # A listing that waits behind a lock longer than that is cancelled.
        with psycopg.connect(DATABASE_URL) as holder:
            holder.execute(
                "LOCK TABLE celery_durable.workflow_status, celery_durable.operation_outputs "
                "IN ACCESS EXCLUSIVE MODE"
            )
            started = time.monotonic()
            with pytest.raises(DBOSQueryTimeoutError, match=r"0\.3s statement timeout"):
                capped.list_workflows(**mine)
            with pytest.raises(DBOSQueryTimeoutError):
                capped.list_workflow_steps(f"{prefix}a")
            assert time.monotonic() - started < 5
            waiting = threading.Thread(target=lambda: uncapped.list_workflows(**mine))
            waiting.start()
            time.sleep(0.6)
            assert waiting.is_alive()  # uncapped: it waits for the lock
            holder.rollback()
        waiting.join(timeout=10)
        # The timeout was the transaction's own: the pooled connection is not capped.
        assert ids(capped.list_workflows(**mine)) == [f"{prefix}a"]
        with capped._service.runtime.process.store.connections.engine.connect() as raw:
            assert raw.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    finally:
        capped.destroy()
        uncapped.destroy()


def test_what_cannot_be_honoured_is_refused(client: DBOSClient) -> None:
    with pytest.raises(DBOSException, match="requires a sharded system database"):
        client.list_workflows(shard_key="s1")
    with pytest.raises(DBOSException, match="requires a sharded system database"):
        DBOS.list_queued_workflows(parent_shard_key=["s1"])
    with pytest.raises(TypeError):
        client.list_workflows(usr="alice")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="isoformat"):
        client.list_workflows(start_time="yesterday")
