"""Step retries: each attempt recorded, backoff between them, and the final error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from celery_durable.core.retry import RetryPolicy
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult
from celery_durable.error import DBOSMaxStepRetriesExceeded
from tests.unit.harness import Harness, step


def flaky(failures: int) -> tuple[list[int], Callable[[], int]]:
    """A function that fails ``failures`` times, then returns how often it was called."""
    calls: list[int] = []

    def call() -> int:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError(f"attempt {len(calls)}")
        return len(calls)

    return calls, call


def test_a_failed_attempt_reschedules_the_workflow_with_backoff(harness: Harness) -> None:
    calls, function = flaky(2)
    policy = RetryPolicy(max_attempts=3, interval_seconds=2.0, backoff_rate=3.0)
    flaky_step = step("flaky", function, policy)
    spec = harness.workflow(lambda: flaky_step(), "backoff")
    harness.enqueue(spec, workflow_id="backoff")
    start = harness.clock.now

    first = harness.deliver("backoff")
    assert isinstance(first, RescheduleWorkflow)
    assert (first.countdown_seconds, first.routine, first.parked) == (2.0, False, False)
    assert first.due_at_epoch_ms == round((start + 2) * 1000)
    [record] = harness.steps("backoff")
    assert (record.attempts, record.completed) == (1, False)
    assert record.retry_due_at_epoch_ms == round((start + 2) * 1000)

    # Delivered before the attempt is due: nothing runs, the rest of the wait is routine.
    harness.clock.advance(0.5)
    early = harness.deliver("backoff", generation=1)
    assert isinstance(early, RescheduleWorkflow)
    assert (early.countdown_seconds, early.routine, len(calls)) == (1.5, True, 1)

    harness.clock.advance(1.5)
    second = harness.deliver("backoff", generation=2)
    assert isinstance(second, RescheduleWorkflow)
    assert second.countdown_seconds == 6.0  # 2 s * 3 ** 1

    harness.clock.advance(6)
    done = harness.deliver("backoff", generation=3)
    assert isinstance(done, RunResult) and (done.outcome, done.output) == ("completed", 3)
    [record] = harness.steps("backoff")
    assert (record.attempts, record.completed, record.max_attempts) == (3, True, 3)
    log = harness.serializer.loads(str(record.attempt_log))
    assert [type(entry["error"]) for entry in log] == [ConnectionError, ConnectionError, type(None)]


def test_the_last_failure_is_recorded_as_max_retries_exceeded(harness: Harness) -> None:
    calls, function = flaky(99)
    policy = RetryPolicy(max_attempts=2, interval_seconds=1.0)
    spec = harness.workflow(step("hopeless", function, policy), "hopeless")
    harness.enqueue(spec, workflow_id="hopeless")
    assert isinstance(harness.deliver("hopeless"), RescheduleWorkflow)
    harness.clock.advance(1)
    result = harness.deliver("hopeless", generation=1)

    assert isinstance(result, RunResult) and result.status == "ERROR"
    assert isinstance(result.error, DBOSMaxStepRetriesExceeded)
    assert [str(e) for e in result.error.errors] == ["attempt 1", "attempt 2"]
    assert len(calls) == 2
    status, error = harness.outcome("hopeless")
    assert status == "ERROR" and isinstance(error, DBOSMaxStepRetriesExceeded)


def test_an_error_the_policy_does_not_retry_fails_at_once(harness: Harness) -> None:
    calls, function = flaky(99)
    policy = RetryPolicy(max_attempts=5, should_retry=lambda e: "1" not in str(e))
    spec = harness.workflow(step("picky", function, policy), "picky")
    harness.enqueue(spec, workflow_id="picky")
    result = harness.deliver("picky")

    assert isinstance(result, RunResult) and isinstance(result.error, ConnectionError)
    assert len(calls) == 1
    [record] = harness.steps("picky")
    assert (record.attempts, record.completed) == (1, True)


def test_a_direct_call_waits_for_its_retries_in_process(harness: Harness) -> None:
    calls, function = flaky(2)
    policy = RetryPolicy(max_attempts=3, interval_seconds=4.0, backoff_rate=2.0)
    spec = harness.workflow(step("inline", function, policy), "inline")
    start = harness.clock.now
    result = harness.call(spec, workflow_id="inline")

    assert (result.outcome, result.output, len(calls)) == ("completed", 3, 3)
    assert harness.clock.now - start == pytest.approx(4 + 8)  # slept in this thread


def test_a_long_wait_is_parked_for_the_sweep(harness: Harness) -> None:
    _, function = flaky(1)
    policy = RetryPolicy(max_attempts=2, interval_seconds=600.0)
    spec = harness.workflow(step("parked", function, policy), "parked")
    harness.enqueue(spec, workflow_id="parked")
    options = RunOptions(inline_retries=False, max_countdown_seconds=60)
    with pytest.raises(RescheduleWorkflow) as raised:
        harness.engine.run("parked", options)

    assert raised.value.parked
    assert harness.store.tables.workflows["parked"].dispatch_parked
