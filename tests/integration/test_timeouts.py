"""Workflow timeouts and delayed starts (DBOS's SetWorkflowTimeout and delay_seconds).

The session's worker keeps time like any worker (a bootstep): a workflow past its
deadline becomes CANCELLED whatever it is doing, and a DELAYED workflow is released
when due. Timeouts here are a few seconds; the assertions allow many times that.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
import redis

from celery_durable import (
    DBOS,
    DBOSClient,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSQueueDeduplicatedError,
)
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()

TIMED = Queue(TEST_QUEUE)
# No worker consumes it: a workflow enqueued there waits, ENQUEUED, for good.
UNCONSUMED = Queue("celery_durable_tests_unconsumed")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@DBOS.step()
def mark(name: str) -> str:
    calls[name] += 1
    return name


@DBOS.step(max_attempts=5, interval_seconds=30.0)
def always_fails(name: str) -> str:
    calls[name] += 1
    raise ConnectionError("down")


@DBOS.step()
def slow_step(name: str, seconds: float) -> str:
    calls[name] += 1
    time.sleep(seconds)
    return name


@DBOS.workflow()
def sleeps_child() -> int:
    DBOS.sleep(120)
    return 1


@DBOS.workflow()
def waits_in(state: str) -> str:
    mark(f"{state}:before")
    if state == "step":
        slow_step(f"{state}:slow", 4.0)
    elif state == "backoff":
        always_fails(f"{state}:fails")
    elif state == "sleep":
        DBOS.sleep(120)
    elif state == "parked":
        DBOS.sleep(10_000)  # longer than the broker holds: parked in PostgreSQL
    elif state == "recv":
        DBOS.recv("never", timeout_seconds=120)
    elif state == "child":
        DBOS.start_workflow(sleeps_child).get_result()
    mark(f"{state}:after")
    return state


@pytest.mark.parametrize("state", ["step", "backoff", "sleep", "parked", "recv", "child"])
def test_a_workflow_past_its_deadline_is_cancelled_whatever_it_waits_for(state: str) -> None:
    workflow_id = f"timeout-{state}-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with SetWorkflowID(workflow_id), SetWorkflowTimeout(2.0):
        handle = DBOS.start_workflow(waits_in, state)
    status = handle.get_status()
    assert status.workflow_timeout_ms == 2000
    assert status.workflow_deadline_epoch_ms is not None
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=30)
    # Long before any of the waits would have ended on its own.
    assert time.monotonic() - started < 30
    cancelled = handle.get_status()
    assert cancelled.status == "CANCELLED"
    # Cancelled at its deadline: it completed then (DBOS's completed_at).
    assert cancelled.completed_at is not None and status.workflow_deadline_epoch_ms is not None
    assert cancelled.completed_at >= status.workflow_deadline_epoch_ms
    time.sleep(1.5)
    assert calls[f"{state}:after"] == 0  # nothing after the deadline ran
    if state == "step":
        # A running step finishes (and is kept); the workflow stops at its boundary.
        wait_until(lambda: calls[f"{state}:slow"] == 1, 10, "the running step to end")
    if state == "child":
        (child,) = [
            w
            for w in DBOS.list_workflows(name="sleeps_child")
            if w.parent_workflow_id == workflow_id
        ]
        assert child.status == "CANCELLED"  # it inherited its parent's deadline
        assert child.workflow_deadline_epoch_ms == status.workflow_deadline_epoch_ms


@DBOS.workflow()
def quick(name: str) -> str:
    return mark(name)


@DBOS.workflow()
def enqueues_a_child_nobody_runs() -> str:
    handle = UNCONSUMED.enqueue(quick, "never")
    result: str = handle.get_result()
    return result


def test_a_child_waiting_in_its_queue_is_cancelled_at_the_inherited_deadline() -> None:
    workflow_id = f"queue-wait-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(workflow_id), SetWorkflowTimeout(2.0):
        handle = DBOS.start_workflow(enqueues_a_child_nobody_runs)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=30)
    (child,) = [w for w in DBOS.list_workflows(name="quick") if w.parent_workflow_id == workflow_id]
    # Queue.enqueue in workflow code puts the child on that queue, with the deadline.
    assert child.queue_name == "celery_durable_tests_unconsumed"
    assert child.status == "CANCELLED"
    assert child.workflow_deadline_epoch_ms == handle.get_status().workflow_deadline_epoch_ms
    assert calls["never"] == 0


@DBOS.workflow()
def starts_an_unbounded_and_a_bounded_child(free_id: str, bound_id: str) -> None:
    with SetWorkflowID(free_id), SetWorkflowTimeout(None):
        TIMED.enqueue(sleeps_briefly)  # no deadline: not its parent's either
    with SetWorkflowID(bound_id):
        TIMED.enqueue(sleeps_briefly)  # its parent's deadline


@DBOS.workflow()
def sleeps_briefly() -> str:
    DBOS.sleep(4)
    return "slept"


def test_set_workflow_timeout_none_starts_a_child_without_its_parents_deadline() -> None:
    free_id, bound_id = (f"unset-timeout-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with SetWorkflowTimeout(2.0):
        parent = TIMED.enqueue(starts_an_unbounded_and_a_bounded_child, free_id, bound_id)
    parent.get_result(timeout=30)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        DBOS.retrieve_workflow(bound_id).get_result(timeout=30)
    free = DBOS.retrieve_workflow(free_id)
    assert free.get_result(timeout=30) == "slept"
    status = free.get_status()
    assert (status.workflow_timeout_ms, status.workflow_deadline_epoch_ms) == (None, None)


@DBOS.workflow()
def enqueues_quick(name: str) -> str:
    handle = TIMED.enqueue(quick, name)
    return handle.workflow_id


def test_a_direct_calls_children_inherit_its_deadline_not_the_callers_block() -> None:
    # The direct call runs in its caller's context: the SetWorkflowTimeout block is
    # the call's own timeout, and its children share the call's deadline.
    workflow_id = f"direct-parent-{uuid.uuid4().hex[:8]}"
    with SetWorkflowTimeout(300), SetWorkflowID(workflow_id):
        child_id = enqueues_quick("direct child")
    assert DBOS.retrieve_workflow(child_id).get_result(timeout=30) == "direct child"
    parent = DBOS.retrieve_workflow(workflow_id).get_status()
    child = DBOS.retrieve_workflow(child_id).get_status()
    assert parent.workflow_deadline_epoch_ms is not None
    assert child.workflow_timeout_ms is None
    assert child.workflow_deadline_epoch_ms == parent.workflow_deadline_epoch_ms


def test_a_queued_workflows_deadline_starts_when_its_queue_admits_it() -> None:
    # Queue.enqueue: the timeout counts from admission, as DBOS's dequeue.
    with SetWorkflowTimeout(60.0):
        handle = TIMED.enqueue(quick, "queued")
    assert handle.get_result(timeout=30) == "queued"
    status = handle.get_status()
    assert status.workflow_timeout_ms == 60_000
    assert status.started_at_epoch_ms is not None
    assert status.workflow_deadline_epoch_ms == status.started_at_epoch_ms + 60_000


def test_a_delayed_workflow_waits_in_postgresql_then_runs() -> None:
    broker = redis.Redis.from_url(BROKER_URL)
    with SetEnqueueOptions(delay_seconds=2.0):
        handle = TIMED.enqueue(quick, "delayed")
    assert handle.get_status().status == "DELAYED"
    assert broker.llen(TEST_QUEUE) == 0  # no message rides the broker meanwhile
    assert handle.get_result(timeout=30) == "delayed"
    status = handle.get_status()
    assert status.started_at_epoch_ms is not None
    assert status.started_at_epoch_ms >= status.created_at + 2000


def test_a_delayed_workflow_can_be_cancelled_and_never_runs() -> None:
    with SetEnqueueOptions(delay_seconds=3.0):
        handle = TIMED.enqueue(quick, "cancelled-while-delayed")
    DBOS.cancel_workflow(handle.workflow_id)
    cancelled = handle.get_status()
    assert cancelled.status == "CANCELLED" and cancelled.completed_at is not None
    assert cancelled.completed_at >= cancelled.created_at
    time.sleep(4.5)
    assert calls["cancelled-while-delayed"] == 0
    assert handle.get_status().status == "CANCELLED"


def test_resuming_a_delayed_workflow_starts_it_now() -> None:
    with SetEnqueueOptions(delay_seconds=3600.0):
        handle = TIMED.enqueue(quick, "resumed early")
    assert handle.get_status().status == "DELAYED"
    DBOS.resume_workflow(handle.workflow_id)
    assert handle.get_result(timeout=30) == "resumed early"
    assert calls["resumed early"] == 1


def test_a_delayed_workflow_holds_its_deduplication_id() -> None:
    deduplication_id = f"delayed-{uuid.uuid4().hex}"
    with SetEnqueueOptions(delay_seconds=60.0, deduplication_id=deduplication_id):
        holder = TIMED.enqueue(quick, "delayed holder")
        with pytest.raises(DBOSQueueDeduplicatedError):
            TIMED.enqueue(quick, "refused")
    DBOS.cancel_workflow(holder.workflow_id)  # the id is free again
    with SetEnqueueOptions(deduplication_id=deduplication_id):
        assert TIMED.enqueue(quick, "after").get_result(timeout=30) == "after"


def test_the_client_takes_a_timeout_and_a_delay() -> None:
    DBOS._service().runtime.operator.register_served("tests@worker")
    client = DBOSClient(DATABASE_URL, BROKER_URL)
    try:
        timed = client.enqueue(
            {"workflow_name": "waits_in", "queue_name": TEST_QUEUE, "workflow_timeout": 2.0},
            "sleep",
        )
        delayed = client.enqueue(
            {"workflow_name": "quick", "queue_name": TEST_QUEUE, "delay_seconds": 1.0}, "later"
        )
        with pytest.raises(DBOSAwaitedWorkflowCancelledError):
            timed.get_result(timeout=30)
        assert delayed.get_result(timeout=30) == "later"
        for bad in ({"workflow_timeout": 0}, {"workflow_timeout": -1}, {"delay_seconds": -1}):
            options: Any = {"workflow_name": "quick", "queue_name": TEST_QUEUE, **bad}
            with pytest.raises(DBOSException):
                client.enqueue(options, "never")
    finally:
        client.destroy()


def test_bad_timeouts_and_delays_are_clear_errors_and_write_nothing() -> None:
    before = _count_workflows()
    for value in (0, -1, float("nan"), "5"):
        with pytest.raises(DBOSException, match="timeout"):
            SetWorkflowTimeout(value)  # type: ignore[arg-type]
    for value in (-1, float("inf"), "5"):
        with (
            pytest.raises(DBOSException, match="delay_seconds"),
            SetEnqueueOptions(
                delay_seconds=value  # type: ignore[arg-type]
            ),
        ):
            pass
    with SetEnqueueOptions(delay_seconds=1.0), pytest.raises(DBOSException, match="direct call"):
        quick("direct")
    assert _count_workflows() == before


def test_a_direct_call_with_a_timeout_is_cancelled_at_its_next_step() -> None:
    @DBOS.workflow(name="direct_with_timeout")
    def direct_with_timeout() -> str:
        slow_step("direct:slow", 3.0)
        return mark("direct:after")

    with SetWorkflowTimeout(1.0), pytest.raises(DBOSAwaitedWorkflowCancelledError):
        direct_with_timeout()
    assert calls == Counter({"direct:slow": 1})


def _count_workflows() -> int:
    with psycopg.connect(DATABASE_URL) as connection:
        row = connection.execute("SELECT count(*) FROM celery_durable.workflow_status").fetchone()
    assert row is not None
    return int(row[0])
