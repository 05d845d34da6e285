"""Workflows executed by a real Celery worker over a real Redis broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from celery import Celery
from celery.signals import before_task_publish

from celery_durable import DBOS, SetWorkflowID
from celery_durable.error import DBOSMaxStepRetriesExceeded, DBOSSerializationError
from celery_durable.integration.publishing import publish_workflow

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()
lock = threading.Lock()
running = Counter[str]()
overlaps: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    running.clear()
    overlaps.clear()


def count(name: str) -> int:
    with lock:
        calls[name] += 1
        return calls[name]


# -- the seed's examples, as written with our imports --------------------------------


@DBOS.step(max_attempts=4, interval_seconds=1.0, backoff_rate=2.0)
def retryable_step() -> str:
    DBOS.logger.info(f"Attempt at {time.time()}")
    # Fails 3 times, succeeds on 4th attempt
    if count("retryable_step") < 4:
        raise Exception("Service not ready")
    return "success"


@DBOS.workflow()
def schedule_workflow() -> str:
    return retryable_step()


def test_attempts_start_at_0_1_3_7_seconds_and_free_the_worker() -> None:
    handle = DBOS.start_workflow(schedule_workflow)
    # While the workflow waits between attempts, both worker slots stay free.
    quick = [DBOS.start_workflow(quick_workflow, n) for n in range(4)]
    assert [h.get_result(timeout=20) for h in quick] == [0, 1, 4, 9]
    assert DBOS.retrieve_workflow(handle.workflow_id).get_status().status == "PENDING"
    assert handle.get_result(timeout=60) == "success"
    assert calls["retryable_step"] == 4
    [step] = DBOS.list_workflow_steps(handle.workflow_id)
    starts = [a["started_at_epoch_ms"] for a in step["attempt_history"]]
    offsets = [(s - starts[0]) / 1000 for s in starts]
    for observed, ideal in zip(offsets, [0.0, 1.0, 3.0, 7.0], strict=True):
        # Never early; lenient about late (a busy machine), never a wall-clock race.
        assert ideal - 0.01 <= observed <= ideal + 3.0, offsets
    assert step["attempts"] == 4 and step["output"] == "success"


@DBOS.workflow()
def quick_workflow(n: int) -> int:
    return square(n)


@DBOS.step()
def square(n: int) -> int:
    return n * n


def charge_payment_api(order_id: str) -> None:
    raise ConnectionError(f"payment service down for {order_id}")


@DBOS.step(max_attempts=2, interval_seconds=0.2)
def charge_payment(order_id: str) -> None:
    count("charge_payment")
    charge_payment_api(order_id)


@DBOS.step()
def cancel_order(order_id: str) -> None:
    count(f"cancel_order:{order_id}")


@DBOS.step()
def ship_order(order_id: str) -> None:
    count("ship_order")


@DBOS.workflow()
def resilient_workflow(order_id: str) -> str:
    try:
        # Try to process payment
        charge_payment(order_id)
    except DBOSMaxStepRetriesExceeded:
        # Payment failed after all retries
        DBOS.logger.error(f"Payment failed for order {order_id}")
        cancel_order(order_id)
        raise

    # Continue with fulfillment
    ship_order(order_id)
    return "completed"


def test_the_seeds_compensation_example() -> None:
    handle = DBOS.start_workflow(resilient_workflow, "o-7")
    with pytest.raises(DBOSMaxStepRetriesExceeded, match="Step charge_payment has exceeded"):
        handle.get_result(timeout=30)
    assert calls == Counter({"charge_payment": 2, "cancel_order:o-7": 1})
    status = handle.get_status()
    assert status.status == "ERROR" and isinstance(status.error, DBOSMaxStepRetriesExceeded)
    assert [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [
        "charge_payment",
        "cancel_order",
    ]


# -- user code cannot swallow the retry ----------------------------------------------


@DBOS.step(max_attempts=3, interval_seconds=0.1)
def flaky_once() -> str:
    if count("flaky_once") == 1:
        raise ConnectionError("first attempt")
    return "recovered"


@DBOS.workflow()
def swallowing_workflow() -> str:
    try:
        return flaky_once()
    except Exception:
        return "swallowed"


def test_except_exception_cannot_swallow_a_retry() -> None:
    handle = DBOS.start_workflow(swallowing_workflow)
    assert handle.get_result(timeout=30) == "recovered"
    assert calls["flaky_once"] == 2


# -- idempotency and duplicate deliveries --------------------------------------------


@DBOS.step()
def slow_side_effect(name: str) -> str:
    with lock:
        running[name] += 1
        if running[name] > 1:
            overlaps.append(name)
        calls[name] += 1
    time.sleep(0.3)
    with lock:
        running[name] -= 1
    return name


@DBOS.workflow()
def two_slow_steps() -> list[str]:
    return [slow_side_effect("one"), slow_side_effect("two")]


def test_set_workflow_id_makes_start_workflow_idempotent() -> None:
    workflow_id = f"idem-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        first = DBOS.start_workflow(two_slow_steps)
    with SetWorkflowID(workflow_id):
        second = DBOS.start_workflow(two_slow_steps)
    assert first.workflow_id == second.workflow_id == workflow_id
    assert second.get_result(timeout=30) == ["one", "two"]
    assert calls == Counter({"one": 1, "two": 1})


def test_duplicate_deliveries_never_run_a_step_twice(celery_app: Celery) -> None:
    workflow_id = f"dup-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(two_slow_steps)
    for _ in range(2):  # two more copies of the same message, at once
        publish_workflow(celery_app, "two_slow_steps", workflow_id)
    assert handle.get_result(timeout=30) == ["one", "two"]
    # A stale copy delivered after the workflow finished does nothing either.
    publish_workflow(celery_app, "two_slow_steps", workflow_id)
    assert DBOS.start_workflow(quick_workflow, 3).get_result(timeout=30) == 9
    time.sleep(0.5)
    assert calls == Counter({"one": 1, "two": 1})
    assert overlaps == []
    assert handle.get_status().status == "SUCCESS"


# -- async ---------------------------------------------------------------------------


@DBOS.step(max_attempts=3, interval_seconds=0.2)
async def async_fetch(key: str) -> str:
    await asyncio.sleep(0.01)
    if count(f"fetch:{key}") == 1 and key == "b":
        raise ConnectionError("b is flaky")
    return key.upper()


@DBOS.workflow()
async def async_gather_workflow() -> list[str]:
    first = await async_fetch("a")
    together = await asyncio.gather(async_fetch("b"), async_fetch("c"), async_fetch("d"))
    return [first, *together]


def test_async_steps_gathered_in_an_async_workflow_on_celery() -> None:
    handle = DBOS.start_workflow(async_gather_workflow)
    assert handle.get_result(timeout=30) == ["A", "B", "C", "D"]
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    assert [(s["function_id"], s["output"]) for s in steps] == [
        (1, "A"),
        (2, "B"),
        (3, "C"),
        (4, "D"),
    ]
    assert steps[1]["attempts"] == 2
    # c and d succeeded in the first pass and were not run again on the retry.
    assert calls == Counter({"fetch:a": 1, "fetch:b": 2, "fetch:c": 1, "fetch:d": 1})


def test_async_workflow_called_directly() -> None:
    assert asyncio.run(async_gather_workflow()) == ["A", "B", "C", "D"]
    assert calls["fetch:b"] == 2


def test_an_async_workflow_called_again_returns_its_recorded_result() -> None:
    workflow_id = f"async-again-{uuid.uuid4()}"
    for _ in range(2):
        with SetWorkflowID(workflow_id):
            assert asyncio.run(async_gather_workflow()) == ["A", "B", "C", "D"]
    assert calls == Counter({"fetch:a": 1, "fetch:b": 2, "fetch:c": 1, "fetch:d": 1})


def test_start_workflow_async() -> None:
    async def main() -> Any:
        handle = await DBOS.start_workflow_async(quick_workflow, 7)
        return await handle.get_result(timeout=30)

    assert asyncio.run(main()) == 49


# -- inputs and outputs --------------------------------------------------------------


@DBOS.workflow()
def echo(value: Any) -> Any:
    return echo_step(value)


@DBOS.step()
def echo_step(value: Any) -> Any:
    return value


def test_rich_values_round_trip_through_celery() -> None:
    import datetime as dt
    from decimal import Decimal

    value = {
        "when": dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC),
        "id": uuid.UUID(int=5),
        "price": Decimal("9.99"),
        "blob": b"\x00\xff",
        "pair": (1, "x"),
        "by_int": {1: "one"},
    }
    assert DBOS.start_workflow(echo, value).get_result(timeout=30) == value


def test_unserializable_arguments_fail_before_anything_is_written_or_published() -> None:
    published: list[Any] = []

    def on_publish(**kwargs: Any) -> None:
        published.append(kwargs)

    before_task_publish.connect(on_publish)
    try:
        before = len(DBOS.list_workflows(name="echo"))
        with pytest.raises(DBOSSerializationError, match="is not serializable"):
            DBOS.start_workflow(echo, object())
        assert len(DBOS.list_workflows(name="echo")) == before
        assert published == []
    finally:
        before_task_publish.disconnect(on_publish)


class Stop(BaseException):
    """Not an Exception (as gevent's Timeout is not): workflows record no outcome for it."""


stopped: Counter[str] = Counter()


@DBOS.workflow()
def stops_once(tag: str) -> str:
    stopped[tag] += 1
    if stopped[tag] == 1:
        raise Stop(f"{tag} stopped on its first execution")
    return tag


def test_a_workflow_stopped_by_a_base_exception_costs_the_worker_no_slot() -> None:
    """Two workflows stopped by a BaseException on the worker's two slots: each message is
    let go (not held unacknowledged for ever), the worker goes on running others, and the
    recovery sweep runs each again to its end."""
    tags = [f"stop-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    stopping = [DBOS.start_workflow(stops_once, tag) for tag in tags]
    deadline = time.monotonic() + 30
    while min(stopped[tag] for tag in tags) < 1:
        assert time.monotonic() < deadline, "the workflows never ran"
        time.sleep(0.05)
    # Both slots took a stopped workflow; both must be free again.
    assert DBOS.start_workflow(quick_workflow, 3).get_result(timeout=30) == 9
    assert [handle.get_result(timeout=60) for handle in stopping] == tags
    assert [stopped[tag] for tag in tags] == [2, 2]
