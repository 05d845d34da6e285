"""The JSON documents of the API (the pages render the same documents).

``reveal`` is False for a visitor who has not authenticated on a dashboard that has
authentication: such documents carry no inputs, outputs, error messages, tracebacks or
values.
"""

from __future__ import annotations

from typing import Any

from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import to_jsonable
from celery_durable.core.tracebacks import recorded_traceback
from celery_durable.error import DBOSMaxStepRetriesExceeded, DBOSSerializationError, RecordedError
from celery_durable.service.overview import QueueDepth, WorkflowPage, WorkflowSummary
from celery_durable.service.progress import attempt_label

HIDDEN = "hidden: log in to see values"


def value(item: Any, reveal: bool) -> Any:
    """A value as JSON (tagged where JSON cannot carry it), or HIDDEN."""
    if not reveal:
        return HIDDEN
    try:
        return to_jsonable(item)
    except DBOSSerializationError:
        return repr(item)


def error(raised: BaseException | None, reveal: bool) -> dict[str, Any] | None:
    """An error's type, message and recorded traceback (None when it has none; hidden
    like its message, since its lines may show values); a step that ran out of attempts
    lists each one's."""
    if raised is None:
        return None
    name = raised.type_name if isinstance(raised, RecordedError) else type(raised).__name__
    text = recorded_traceback(raised)
    document: dict[str, Any] = {
        "type": name,
        "message": str(raised) if reveal else HIDDEN,
        "traceback": text if reveal or text is None else HIDDEN,
    }
    if isinstance(raised, DBOSMaxStepRetriesExceeded):
        document["attempt_errors"] = [error(item, reveal) for item in raised.errors]
    return document


def summary(workflow: WorkflowSummary) -> dict[str, Any]:
    return {
        "workflow_id": workflow.workflow_uuid,
        "name": workflow.name,
        "status": workflow.status,
        "queue_name": workflow.queue_name,
        "authenticated_user": workflow.authenticated_user,
        "executor_id": workflow.executor_id,
        "recovery_attempts": workflow.recovery_attempts,
        "created_at_epoch_ms": workflow.created_at_epoch_ms,
        "updated_at_epoch_ms": workflow.updated_at_epoch_ms,
        "started_at_epoch_ms": workflow.started_at_epoch_ms,
        "completed_at_epoch_ms": workflow.completed_at_epoch_ms,
        "parent_workflow_id": workflow.parent_workflow_id,
    }


def page(found: WorkflowPage, *, limit: int, offset: int) -> dict[str, Any]:
    return {
        "workflows": [summary(workflow) for workflow in found.workflows],
        "counts": found.counts,
        "total": found.total,
        "limit": limit,
        "offset": offset,
    }


def workflow(status: WorkflowStatus, reveal: bool) -> dict[str, Any]:
    """One workflow: its identity, status, times, inputs and outcome. Its Celery task
    id is its workflow id."""
    return {
        "workflow_id": status.workflow_id,
        "celery_task_id": status.workflow_id,
        "name": status.name,
        "status": status.status,
        # The Celery queue its messages go to; DBOS's queue_name (None unless it was
        # enqueued on a DBOS queue) beside it.
        "celery_queue": status.celery_queue,
        "queue_name": status.queue_name,
        "input": value(status.input, reveal),
        "output": value(status.output, reveal) if status.output is not None else None,
        "error": error(status.error, reveal),
        "authenticated_user": status.authenticated_user,
        "executor_id": status.executor_id,
        "recovery_attempts": status.recovery_attempts,
        "max_recovery_attempts": status.max_recovery_attempts,
        "parent_workflow_id": status.parent_workflow_id,
        "deduplication_id": status.deduplication_id,
        "priority": status.priority,
        "created_at_epoch_ms": status.created_at,
        "updated_at_epoch_ms": status.updated_at,
        "started_at_epoch_ms": status.started_at_epoch_ms,
        "completed_at_epoch_ms": status.completed_at_epoch_ms,
        "workflow_deadline_epoch_ms": status.workflow_deadline_epoch_ms,
    }


def steps(recorded: list[dict[str, Any]], reveal: bool) -> list[dict[str, Any]]:
    """Every step with every attempt: start, end, duration, the wait before it, error,
    and its ``label`` (attempt n of the step's budget, ``3/4``). A step's ``status``:
    success, error, running, waiting (for its next attempt) or stopped (the workflow
    ended between two attempts)."""
    return [_step(step, reveal) for step in recorded]


def _step(step: dict[str, Any], reveal: bool) -> dict[str, Any]:
    attempts: list[dict[str, Any]] = []
    previous_end: int | None = None
    for entry in step["attempt_history"]:
        started, completed = entry["started_at_epoch_ms"], entry["completed_at_epoch_ms"]
        attempts.append(
            {
                "attempt": entry["attempt"],
                "label": attempt_label(entry["attempt"], step["max_attempts"]),
                "started_at_epoch_ms": started,
                "completed_at_epoch_ms": completed,
                "duration_ms": None if completed is None else completed - started,
                "waited_before_ms": None if previous_end is None else started - previous_end,
                "outcome": _outcome(step, entry),
                "error": error(entry["error"], reveal),
            }
        )
        previous_end = completed
    return {
        "function_id": step["function_id"],
        "function_name": step["function_name"],
        "status": _status(step),
        "attempts": step["attempts"],
        "max_attempts": step["max_attempts"],
        "child_workflow_id": step["child_workflow_id"],
        "started_at_epoch_ms": step["started_at_epoch_ms"],
        "completed_at_epoch_ms": step["completed_at_epoch_ms"],
        "retry_due_at_epoch_ms": step["retry_due_at_epoch_ms"],
        "output": value(step["output"], reveal) if step["output"] is not None else None,
        "error": error(step["error"], reveal),
        "attempt_history": attempts,
    }


def _status(step: dict[str, Any]) -> str:
    if "state" in step:  # see celery_durable.service.progress.with_current_attempts
        return str(step["state"])
    if step["completed_at_epoch_ms"] is None:
        return "waiting" if step["retry_due_at_epoch_ms"] is not None else "running"
    return "error" if step["error"] is not None else "success"


def _outcome(step: dict[str, Any], entry: dict[str, Any]) -> str:
    if entry["error"] is not None:
        return "failed"
    if entry["completed_at_epoch_ms"] is None:
        return "running"
    return "error" if step["error"] is not None else "success"


def queue(depth: QueueDepth) -> dict[str, Any]:
    return {
        "queue_name": depth.queue_name,
        "enqueued": depth.enqueued,
        "pending": depth.pending,
        "oldest_enqueued_at_epoch_ms": depth.oldest_enqueued_at_epoch_ms,
        "declared": depth.declared,
        "concurrency": depth.concurrency,
        "worker_concurrency": depth.worker_concurrency,
        "limiter_limit": depth.limiter_limit,
        "limiter_period_ms": depth.limiter_period_ms,
        "priority_enabled": depth.priority_enabled,
    }
