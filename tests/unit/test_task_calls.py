"""Celery tasks called from workflows (``engine/task_calls.py``): each attempt sent once,
its outcome reported by a callback, retries, timeouts and the final error."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.retry import RetryPolicy
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import task_calls
from celery_durable.engine.context import current_workflow
from celery_durable.error import DBOSCeleryTaskError, DBOSException, DBOSMaxStepRetriesExceeded
from tests.unit.harness import Harness


def call(timeout_seconds: float | None = None, max_attempts: int = 3) -> task_calls.TaskCall:
    return task_calls.TaskCall(
        name="billing.charge",
        signature="the signature",
        policy=RetryPolicy(max_attempts=max_attempts, interval_seconds=2.0, backoff_rate=1.0),
        timeout_seconds=timeout_seconds,
    )


def runs_task(task: task_calls.TaskCall) -> Any:
    function_id = task_calls.start(task)
    workflow = current_workflow.get()
    assert workflow is not None
    return task_calls.result(workflow, function_id, task)


def report(harness: Harness, workflow_id: str, task_id: str, **outcome: Any) -> bool:
    """What our callback's statement does (``RECORD_TASK_OUTCOME``) to operation 1."""
    steps = harness.store.tables.steps[workflow_id]
    row = steps[1]
    if row.child_workflow_id != task_id or row.completed or row.error is not None:
        return False
    error = outcome.get("error")
    steps[1] = replace(
        row,
        output=None if error else harness.serializer.dumps(outcome.get("output")),
        error=harness.serializer.dumps(error) if error else None,
        completed_at_epoch_ms=None if error else now_epoch_ms(),
    )
    return True


def failure(task_id: str) -> DBOSCeleryTaskError:
    return DBOSCeleryTaskError("billing.charge", task_id, "ValueError", "declined")


def test_an_attempt_is_sent_once_and_its_reported_result_returned(harness: Harness) -> None:
    spec = harness.workflow(lambda: runs_task(call()), "once")
    harness.enqueue(spec, workflow_id="w")
    assert isinstance(harness.deliver("w"), RescheduleWorkflow)
    assert harness.launcher.dispatched_tasks == [("the signature", "w:task:1:1")]
    # Woken before the task reported (another reason): it waits, it does not send again.
    assert isinstance(harness.deliver("w", 1), RescheduleWorkflow)
    assert len(harness.launcher.dispatched_tasks) == 1
    assert report(harness, "w", "w:task:1:1", output=42)
    assert not report(harness, "w", "w:task:1:1", output=43)  # a duplicate callback
    result = harness.deliver("w", 2)
    assert not isinstance(result, RescheduleWorkflow) and result.output == 42
    assert len(harness.launcher.dispatched_tasks) == 1


def test_a_failed_attempt_is_sent_again_after_the_backoff_then_exhausted(
    harness: Harness,
) -> None:
    spec = harness.workflow(lambda: runs_task(call(max_attempts=2)), "retried")
    harness.enqueue(spec, workflow_id="r")
    harness.deliver("r")
    assert report(harness, "r", "r:task:1:1", error=failure("r:task:1:1"))
    backoff = harness.deliver("r", 1)
    assert isinstance(backoff, RescheduleWorkflow) and backoff.countdown_seconds == 2.0
    assert len(harness.launcher.dispatched_tasks) == 1
    assert not report(harness, "r", "r:task:1:1", output="late")  # no attempt in flight
    harness.clock.advance(2.0)
    assert isinstance(harness.deliver("r", 2), RescheduleWorkflow)
    assert harness.launcher.dispatched_tasks[-1] == ("the signature", "r:task:1:2")
    assert report(harness, "r", "r:task:1:2", error=failure("r:task:1:2"))
    result = harness.deliver("r", 3)
    assert not isinstance(result, RescheduleWorkflow)
    assert isinstance(result.error, DBOSMaxStepRetriesExceeded)
    assert [str(error) for error in result.error.errors] == [
        str(failure("r:task:1:1")),
        str(failure("r:task:1:2")),
    ]
    (step,) = harness.steps("r")
    assert step.attempts == 2 and step.completed


def test_an_attempt_without_an_outcome_in_time_fails_and_its_late_report_is_ignored(
    harness: Harness,
) -> None:
    spec = harness.workflow(lambda: runs_task(call(timeout_seconds=10)), "lost")
    harness.enqueue(spec, workflow_id="l")
    waiting = harness.deliver("l")
    assert isinstance(waiting, RescheduleWorkflow) and waiting.countdown_seconds == 10
    harness.clock.advance(10)
    assert isinstance(harness.deliver("l", 1), RescheduleWorkflow)  # the backoff
    assert not report(harness, "l", "l:task:1:1", output="too late")
    harness.clock.advance(2)
    harness.deliver("l", 2)
    assert harness.launcher.dispatched_tasks[-1] == ("the signature", "l:task:1:2")
    assert report(harness, "l", "l:task:1:2", output="on time")
    result = harness.deliver("l", 3)
    assert not isinstance(result, RescheduleWorkflow) and result.output == "on time"
    (step,) = harness.steps("l")
    log = harness.serializer.loads(step.attempt_log or "null")
    assert log[0]["error"].error_type == "TimeoutError"


def test_a_task_call_outside_a_workflow_or_in_a_direct_call_is_a_clear_error(
    harness: Harness,
) -> None:
    with pytest.raises(DBOSException, match="must be called from workflow code"):
        task_calls.start(call())
    spec = harness.workflow(lambda: runs_task(call()), "direct")
    result = harness.call(spec, workflow_id="d")
    assert isinstance(result.error, DBOSException)
    assert "not as a direct call" in str(result.error)
    assert harness.launcher.dispatched_tasks == []


def test_a_workflow_waiting_for_one_task_looks_again_when_another_is_due(
    harness: Harness,
) -> None:
    def two_tasks() -> list[Any]:
        first = task_calls.start(call())  # no timeout: only its callback ends the wait
        second = task_calls.start(call())
        workflow = current_workflow.get()
        assert workflow is not None
        return [task_calls.result(workflow, id_, call()) for id_ in (first, second)]

    harness.enqueue(harness.workflow(two_tasks, "two"), workflow_id="t")
    waiting = harness.deliver("t")
    assert isinstance(waiting, RescheduleWorkflow)
    assert waiting.countdown_seconds == task_calls.NO_DEADLINE_RECHECK_SECONDS
    steps = harness.store.tables.steps["t"]
    steps[2] = replace(steps[2], error=harness.serializer.dumps(failure("t:task:2:1")))
    # The second task failed: its retry is due before the first task reports.
    waiting = harness.deliver("t", 1)
    assert isinstance(waiting, RescheduleWorkflow) and waiting.countdown_seconds == 2.0
    harness.clock.advance(2.0)
    harness.deliver("t", 2)
    assert harness.launcher.dispatched_tasks[-1] == ("the signature", "t:task:2:2")


def test_run_task_records_its_attempt_as_it_parks_and_sends_it_once_both_are_written(
    harness: Harness,
) -> None:
    spec = harness.workflow(lambda: task_calls.run(call()), "run")
    harness.enqueue(spec, workflow_id="p")
    seen: list[tuple[bool, bool]] = []

    def dispatch_task(signature: Any, *, task_id: str, workflow_id: str, function_id: int) -> None:
        # When the task is sent: its attempt is in flight, and the workflow released.
        (step,) = harness.steps("p")
        row = harness.store.tables.workflows["p"]
        seen.append((step.child_workflow_id == task_id, row.execution_active))
        harness.launcher.dispatched_tasks.append((signature, task_id))

    harness.launcher.dispatch_task = dispatch_task  # type: ignore[method-assign]
    waiting = harness.deliver("p")
    assert isinstance(waiting, RescheduleWorkflow)
    assert seen == [(True, False)]
    assert harness.launcher.dispatched_tasks == [("the signature", "p:task:1:1")]
    assert report(harness, "p", "p:task:1:1", output=7)
    result = harness.deliver("p", 1)
    assert not isinstance(result, RescheduleWorkflow) and result.output == 7
    assert len(harness.launcher.dispatched_tasks) == 1


def test_run_task_reports_an_attempt_it_could_not_send_as_failed(harness: Harness) -> None:
    spec = harness.workflow(lambda: task_calls.run(call()), "unsent")
    harness.enqueue(spec, workflow_id="u")

    def dispatch_task(signature: Any, **_: Any) -> None:
        raise ConnectionError("broker down")

    harness.launcher.dispatch_task = dispatch_task  # type: ignore[method-assign]
    assert isinstance(harness.deliver("u"), RescheduleWorkflow)
    ((task_id, error),) = harness.launcher.unsent_tasks
    assert task_id == "u:task:1:1" and isinstance(error, ConnectionError)
