"""What an execution does with its claim: run, or stop before running anything."""

from __future__ import annotations

from typing import cast

import pytest

from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.context import current_workflow
from celery_durable.engine.executor import RunResult
from celery_durable.error import DBOSConflictingWorkflowError, DBOSWorkflowFunctionNotFoundError
from tests.unit.harness import Harness, step
from tests.unit.memory_execution import MemoryExecution


def outcome_of(result: RunResult | RescheduleWorkflow) -> str:
    assert isinstance(result, RunResult), result
    return result.outcome


def test_only_a_runnable_workflow_of_the_current_generation_runs(harness: Harness) -> None:
    ran: list[int] = []
    spec = harness.workflow(lambda: ran.append(1), "counted")
    assert outcome_of(harness.deliver("nothing-here")) == "missing"
    harness.enqueue(spec, workflow_id="once")
    harness.store.tables.workflows["once"].dispatch_generation = 3
    assert outcome_of(harness.deliver("once", generation=2)) == "stale"
    assert outcome_of(harness.deliver("once", generation=3)) == "completed"
    assert outcome_of(harness.deliver("once", generation=3)) == "finished"
    assert ran == [1]


def test_a_second_delivery_while_the_first_runs_is_busy(harness: Harness) -> None:
    seen: list[str] = []
    spec = harness.workflow(lambda: seen.append(outcome_of(harness.deliver("twice"))), "twice")
    harness.enqueue(spec, workflow_id="twice")
    assert outcome_of(harness.deliver("twice")) == "completed"
    assert seen == ["busy"]


def test_a_workflow_whose_executions_died_too_often_is_not_run(harness: Harness) -> None:
    spec = harness.workflow(lambda: None, "doomed")
    harness.enqueue(spec, workflow_id="doomed")
    row = harness.store.tables.workflows["doomed"]
    row.execution_active, row.recovery_attempts = True, 3  # its last owner died
    assert outcome_of(harness.deliver("doomed")) == "exceeded"
    assert harness.outcome("doomed") == ("MAX_RECOVERY_ATTEMPTS_EXCEEDED", None)


def test_a_cancelled_workflow_stops_at_its_next_step_boundary(harness: Harness) -> None:
    ran: list[str] = []

    def cancel_me() -> None:
        ran.append("first")
        harness.store.tables.workflows["cancelled"].status = "CANCELLED"

    first, second = step("first", cancel_me), step("second", lambda: ran.append("second"))
    spec = harness.workflow(lambda: (first(), second()), "cancellable")
    harness.enqueue(spec, workflow_id="cancelled")
    result = harness.deliver("cancelled")

    assert isinstance(result, RunResult) and (result.outcome, result.status) == (
        "cancelled",
        "CANCELLED",
    )
    assert ran == ["first"]
    assert [s.function_name for s in harness.steps("cancelled")] == ["first"]  # kept


def test_a_lost_fence_stops_the_execution_before_its_next_step(harness: Harness) -> None:
    ran: list[str] = []

    def lose_the_fence() -> None:
        context = current_workflow.get()
        assert context is not None
        cast(MemoryExecution, context.execution).fence_lost = True

    spec = harness.workflow(
        lambda: (step("first", lose_the_fence)(), step("second", ran.append)("second")), "lost"
    )
    harness.enqueue(spec, workflow_id="lost")
    signal = harness.deliver("lost")

    assert isinstance(signal, RescheduleWorkflow)
    assert signal.countdown_seconds == DATABASE_RETRY_SECONDS
    assert ran == []


def test_a_direct_call_cannot_reuse_another_workflow_s_id(harness: Harness) -> None:
    harness.enqueue(harness.workflow(lambda: None, "owner"), workflow_id="taken")
    with pytest.raises(DBOSConflictingWorkflowError):
        harness.call(harness.workflow(lambda: None, "intruder"), workflow_id="taken")
    assert "taken" not in harness.store.tables.fences


def test_a_workflow_this_process_does_not_know_is_left_for_one_that_does(
    harness: Harness,
) -> None:
    spec = harness.workflow(lambda: None, "elsewhere")
    harness.enqueue(spec, workflow_id="unknown")
    del harness.specs["elsewhere"]
    with pytest.raises(DBOSWorkflowFunctionNotFoundError):
        harness.deliver("unknown")
    row = harness.store.tables.workflows["unknown"]
    assert (row.status, row.execution_active) == ("PENDING", False)
    assert "unknown" not in harness.store.tables.fences
