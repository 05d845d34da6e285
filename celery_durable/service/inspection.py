"""Reading workflows and their steps for people and scripts (DBOS and DBOSClient)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict, Unpack

from celery_durable.core.outcomes import decode_status
from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import Serializer
from celery_durable.store import SystemStore


class WorkflowFilters(TypedDict, total=False):
    """Filters of ``list_workflows`` (all optional; None or absent: no filter).

    ``status`` is one status or a list; ``start_time`` and ``end_time`` bound the
    creation time (ISO-8601 strings or datetimes; naive ones are UTC).
    """

    workflow_ids: list[str] | None
    status: str | list[str] | None
    start_time: str | dt.datetime | None
    end_time: str | dt.datetime | None
    name: str | None
    queue_name: str | None
    app_version: str | list[str] | None
    limit: int | None
    offset: int | None
    sort_desc: bool


def unregistered_note(store: SystemStore, workflow: WorkflowStatus) -> str | None:
    """Why a runnable workflow waits when no worker has registered its name, or None."""
    if workflow.status not in ("ENQUEUED", "PENDING") or store.workers.is_registered(workflow.name):
        return None
    return (
        f"no worker has registered workflow {workflow.name!r}: workers refuse its messages "
        "as unregistered tasks. Deploy a worker that defines it, or cancel it"
    )


def list_workflows(
    store: SystemStore, serializer: Serializer, **filters: Unpack[WorkflowFilters]
) -> list[WorkflowStatus]:
    """Workflows matching every given filter, oldest first (as in DBOS)."""
    status = filters.get("status")
    version = filters.get("app_version")
    rows = store.workflows.list_workflows(
        app_version=[version] if isinstance(version, str) else version,
        workflow_ids=filters.get("workflow_ids"),
        status=[status] if isinstance(status, str) else status,
        name=filters.get("name"),
        queue_name=filters.get("queue_name"),
        start_epoch_ms=epoch_ms(filters.get("start_time")),
        end_epoch_ms=epoch_ms(filters.get("end_time")),
        limit=filters.get("limit"),
        offset=filters.get("offset"),
        sort_desc=filters.get("sort_desc", False),
    )
    return [decode_status(row, serializer) for row in rows]


def list_workflow_steps(
    store: SystemStore, serializer: Serializer, workflow_id: str
) -> list[dict[str, Any]]:
    """Every recorded step of a workflow, ordered by ``function_id``.

    Each dict has ``function_id``, ``function_name``, ``output``, ``error`` (the
    exception), ``child_workflow_id``, ``task_id`` (a ``DBOS.run_task`` call's last
    attempt's Celery task id, else None), ``attempts`` (made so far), ``max_attempts`` (the
    step's budget; None for operations that are not retried), ``started_at_epoch_ms``,
    ``completed_at_epoch_ms`` (None while the step waits for its next attempt),
    ``retry_due_at_epoch_ms`` and ``attempt_history``: one dict per attempt with
    ``attempt``, ``started_at_epoch_ms``, ``completed_at_epoch_ms`` and ``error``.
    """
    steps: list[dict[str, Any]] = []
    for step in store.workflows.list_steps(workflow_id):
        log = (
            serializer.loads(step.attempt_log)
            if step.attempt_log is not None
            else [
                {
                    "started_at_epoch_ms": step.started_at_epoch_ms,
                    "completed_at_epoch_ms": step.completed_at_epoch_ms,
                    "error": None,
                }
            ]
        )
        if step.completed_at_epoch_ms is not None and step.error is None and log:
            log = [*log, *_reported_success(step, log)]
        task_id = _celery_task_id(workflow_id, step)
        steps.append(
            {
                "function_id": step.function_id,
                "function_name": step.function_name,
                "output": _load(serializer, step.output),
                "error": _load(serializer, step.error),
                "child_workflow_id": None if task_id else step.child_workflow_id,
                "task_id": task_id,
                "attempts": step.attempts,
                "max_attempts": step.max_attempts,
                "started_at_epoch_ms": step.started_at_epoch_ms,
                "completed_at_epoch_ms": step.completed_at_epoch_ms,
                "retry_due_at_epoch_ms": step.retry_due_at_epoch_ms,
                "attempt_history": [
                    {"attempt": number, **entry} for number, entry in enumerate(log, start=1)
                ],
            }
        )
    return steps


def _celery_task_id(workflow_id: str, step: Any) -> str | None:
    """The Celery task id of a ``DBOS.run_task`` call's last attempt (its row keeps it
    where a child's id goes; ``engine.task_calls.task_id_of``), or None."""
    child = step.child_workflow_id
    if child is not None and child.startswith(f"{workflow_id}:task:{step.function_id}:"):
        return str(child)
    return None


def _reported_success(step: Any, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Celery task call's last attempt, which its callback completed without writing
    the log (``DBOS.run_task``). Its start is not recorded: the previous attempt's end
    stands for it (it started after the backoff that followed)."""
    if step.attempts <= len(log):
        return []
    return [
        {
            "started_at_epoch_ms": log[-1]["completed_at_epoch_ms"],
            "completed_at_epoch_ms": step.completed_at_epoch_ms,
            "error": None,
        }
    ]


def _load(serializer: Serializer, text: str | None) -> Any:
    return None if text is None else serializer.loads(text)


def epoch_ms(value: str | dt.datetime | None) -> int | None:
    """An ISO-8601 string or datetime as epoch milliseconds (naive means UTC)."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)
