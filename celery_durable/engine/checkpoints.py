"""Reading and writing one function's checkpoint inside a workflow (steps, transactions)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from celery_durable.core import instrumentation
from celery_durable.core.records import StepRecord
from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.signals import RescheduleWorkflow, WorkflowCancelled
from celery_durable.engine.context import WorkflowContext
from celery_durable.error import (
    DBOSSerializationError,
    DBOSSystemDatabaseError,
    DBOSUnexpectedStepError,
)


def expect_name(workflow: WorkflowContext, function_id: int, expected: str, recorded: str) -> None:
    """Replay must call the same function at the same position, or the code changed."""
    if recorded != expected:
        raise DBOSUnexpectedStepError(workflow.workflow_id, function_id, expected, recorded)


def load(workflow: WorkflowContext, function_id: int, name: str, text: str) -> Any:
    """Deserializes a recorded value; a corrupt one is an error naming its step."""
    try:
        return workflow.serializer.loads(text)
    except DBOSSerializationError as error:
        raise DBOSSerializationError(
            f"Workflow {workflow.workflow_id} step {function_id} ({name}): cannot "
            f"deserialize its checkpoint: {error.message}"
        ) from error


def replay(workflow: WorkflowContext, checkpoint: StepRecord) -> Any:
    """Returns a completed checkpoint's output, or raises its error."""
    name = checkpoint.function_name
    if checkpoint.error is not None:
        raise load(workflow, checkpoint.function_id, name, checkpoint.error)
    if checkpoint.output is None:
        return None
    return load(workflow, checkpoint.function_id, name, checkpoint.output)


@contextlib.contextmanager
def system_database_failure_reschedules() -> Iterator[None]:
    """A system database failure inside a workflow is not the workflow's: it must pass
    through user code (``except Exception`` must not see it), so it becomes a reschedule
    signal and the workflow runs again from its checkpoints."""
    try:
        yield
    except DBOSSystemDatabaseError as error:
        raise RescheduleWorkflow(
            DATABASE_RETRY_SECONDS, f"system database unavailable: {error}"
        ) from error


def record(workflow: WorkflowContext, outcome: StepRecord) -> None:
    """Writes a checkpoint, and stops the workflow there if it was cancelled.

    The function whose outcome could not be recorded may run again (at-least-once).
    """
    probe = instrumentation.probe
    started = time.perf_counter() if probe is not None else 0.0
    with system_database_failure_reschedules():
        status = workflow.execution.record_step(outcome)
    if probe is not None:
        probe.checkpoint_recorded(time.perf_counter() - started)
    stop_if_cancelled(workflow, status)


def stop_if_cancelled(workflow: WorkflowContext, status: str | None) -> None:
    """A status read back by a checkpoint's statement: anything but PENDING (cancelled,
    or resumed under us) stops the execution there; what was recorded is kept."""
    if status is not None and status != "PENDING":
        raise WorkflowCancelled(workflow.workflow_id)
