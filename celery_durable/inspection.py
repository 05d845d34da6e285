"""Reading workflows and their steps for people and scripts (DBOS and DBOSClient)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery_durable.handle import decode_status
from celery_durable.records import WorkflowStatus
from celery_durable.serialization import Serializer
from celery_durable.store import SystemStore


def list_workflows(
    store: SystemStore,
    serializer: Serializer,
    *,
    workflow_ids: list[str] | None = None,
    status: str | list[str] | None = None,
    start_time: str | dt.datetime | None = None,
    end_time: str | dt.datetime | None = None,
    name: str | None = None,
    queue_name: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    sort_desc: bool = False,
) -> list[WorkflowStatus]:
    """Workflows matching every given filter, oldest first (as in DBOS).

    ``start_time`` and ``end_time`` bound the creation time (ISO-8601 strings or
    datetimes; naive ones are UTC); ``status`` is one status or a list.
    """
    rows = store.list_workflows(
        workflow_ids=workflow_ids,
        status=[status] if isinstance(status, str) else status,
        name=name,
        queue_name=queue_name,
        start_epoch_ms=epoch_ms(start_time),
        end_epoch_ms=epoch_ms(end_time),
        limit=limit,
        offset=offset,
        sort_desc=sort_desc,
    )
    return [decode_status(row, serializer) for row in rows]


def list_workflow_steps(
    store: SystemStore, serializer: Serializer, workflow_id: str
) -> list[dict[str, Any]]:
    """Every recorded step of a workflow, ordered by ``function_id``.

    Each dict has ``function_id``, ``function_name``, ``output``, ``error`` (the
    exception), ``child_workflow_id``, ``attempts``, ``started_at_epoch_ms``,
    ``completed_at_epoch_ms`` (None while the step waits for its next attempt),
    ``retry_due_at_epoch_ms`` and ``attempt_history``: one dict per attempt with
    ``attempt``, ``started_at_epoch_ms``, ``completed_at_epoch_ms`` and ``error``.
    """
    steps: list[dict[str, Any]] = []
    for checkpoint, child_workflow_id in store.list_steps(workflow_id):
        log = (
            serializer.loads(checkpoint.attempt_log)
            if checkpoint.attempt_log is not None
            else [
                {
                    "started_at_epoch_ms": checkpoint.started_at_epoch_ms,
                    "completed_at_epoch_ms": checkpoint.completed_at_epoch_ms,
                    "error": None,
                }
            ]
        )
        steps.append(
            {
                "function_id": checkpoint.function_id,
                "function_name": checkpoint.function_name,
                "output": None
                if checkpoint.output is None
                else serializer.loads(checkpoint.output),
                "error": None if checkpoint.error is None else serializer.loads(checkpoint.error),
                "child_workflow_id": child_workflow_id,
                "attempts": checkpoint.attempts,
                "started_at_epoch_ms": checkpoint.started_at_epoch_ms,
                "completed_at_epoch_ms": checkpoint.completed_at_epoch_ms,
                "retry_due_at_epoch_ms": checkpoint.retry_due_at_epoch_ms,
                "attempt_history": [
                    {"attempt": number, **entry} for number, entry in enumerate(log, start=1)
                ],
            }
        )
    return steps


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
