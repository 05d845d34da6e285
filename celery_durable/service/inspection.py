"""Reading workflows and their steps for people and scripts (DBOS and DBOSClient)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from celery_durable.core.outcomes import decode_status
from celery_durable.core.records import StepInfo, WorkflowStatus
from celery_durable.core.serialization import Serializer
from celery_durable.error import DBOSException
from celery_durable.store import SystemStore, WorkflowQuery

# DBOS 3.4's filters given as one value or a list, and the query's field for each.
_ONE_OR_MANY = {
    "status": "statuses",
    "name": "names",
    "app_version": "app_versions",
    "forked_from": "forked_from",
    "parent_workflow_id": "parent_workflow_ids",
    "user": "users",
    "queue_name": "queue_names",
    "executor_id": "executor_ids",
    "workflow_id_prefix": "workflow_id_prefixes",
    "schedule_name": "schedule_names",
}

# DBOS 3.4's time filters (ISO-8601 strings, or datetimes; naive ones are UTC).
_TIMES = {
    "start_time": "created_from_ms",
    "end_time": "created_until_ms",
    "completed_after": "completed_from_ms",
    "completed_before": "completed_until_ms",
    "dequeued_after": "dequeued_from_ms",
    "dequeued_before": "dequeued_until_ms",
}

_AS_GIVEN = ("was_forked_from", "is_fork", "has_parent", "sort_desc", "load_input", "load_output")


def filters_of(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A facade method's arguments (its ``locals()``) without ``cls`` or ``self``: the
    facades spell out DBOS 3.4's keyword parameters, and pass them on at once."""
    return {name: value for name, value in arguments.items() if name not in ("cls", "self")}


def workflow_query(filters: Mapping[str, Any], *, queues_only: bool = False) -> WorkflowQuery:
    """DBOS 3.4's ``list_workflows`` filters as the store's query, as DBOS reads them:
    one value or a list (an empty list, a ``limit`` or ``offset`` of 0: no filter),
    except ``workflow_ids=[]``, which matches nothing here (so that acting on "the
    workflows listed" from an empty selection acts on none).

    Raises:
        DBOSException: ``shard_key`` or ``parent_shard_key`` given (a celery_durable
            system database is not sharded, as DBOS says of an unsharded one).
        ValueError: an unknown filter, a time that is not ISO-8601, or ``attributes``
            that are not a JSON object.
    """
    unknown = set(filters) - _KNOWN
    if unknown:
        raise ValueError(f"unknown list_workflows filters: {', '.join(sorted(unknown))}")
    for key in ("shard_key", "parent_shard_key"):
        if filters.get(key) is not None:
            raise DBOSException(f"Filtering by {key} requires a sharded system database")
    fields: dict[str, Any] = {"queues_only": queues_only or bool(filters.get("queues_only"))}
    ids = filters.get("workflow_ids")
    fields["workflow_ids"] = None if ids is None else list(ids)
    for name, field in _ONE_OR_MANY.items():
        value = filters.get(name)
        values = [value] if isinstance(value, str) else value
        fields[field] = list(values) if values else None
    for name, field in _TIMES.items():
        fields[field] = epoch_ms(filters.get(name) or None)
    for name in _AS_GIVEN:
        if name in filters:
            fields[name] = filters[name]
    fields["limit"] = filters.get("limit") or None
    fields["offset"] = filters.get("offset") or None
    attributes = filters.get("attributes")
    if attributes:
        if not isinstance(attributes, dict):
            raise ValueError("attributes must be a dict (a JSON object)")
        fields["attributes"] = json.dumps(attributes)
    return WorkflowQuery(**fields)


# Every filter of DBOS 3.4's list_workflows. ``application_name`` selects the rows an
# application of a shared system database owns plus the rows no application owns; no
# celery_durable row has an owner, so it selects every row, as DBOS does for such rows.
_KNOWN = frozenset(
    {*_ONE_OR_MANY, *_TIMES, *_AS_GIVEN}
    | {"workflow_ids", "limit", "offset", "queues_only", "attributes"}
    | {"application_name", "shard_key", "parent_shard_key"}
)


def unregistered_note(store: SystemStore, workflow: WorkflowStatus) -> str | None:
    """Why a runnable workflow waits when no worker has registered its name, or None."""
    if workflow.status not in ("ENQUEUED", "PENDING") or store.workers.is_registered(workflow.name):
        return None
    return (
        f"no worker has registered workflow {workflow.name!r}: workers refuse its messages "
        "as unregistered tasks. Deploy a worker that defines it, or cancel it"
    )


def list_workflows(
    store: SystemStore, serializer: Serializer, query: WorkflowQuery
) -> list[WorkflowStatus]:
    """The workflows ``query`` selects, oldest first unless ``sort_desc`` (as DBOS)."""
    return [decode_status(row, serializer) for row in store.workflows.list_workflows(query)]


def list_workflow_steps(
    store: SystemStore,
    serializer: Serializer,
    workflow_id: str,
    *,
    load_output: bool = True,
    limit: int | None = None,
    offset: int | None = None,
) -> list[StepInfo]:
    """Every recorded step of a workflow, ordered by ``function_id`` (or the page
    ``limit``/``offset`` give, as DBOS's ``list_workflow_steps``).

    Each dict has DBOS 3.4's ``StepInfo`` keys: ``function_id``, ``function_name``,
    ``output``, ``error`` (the exception; with ``load_output=False`` both are None),
    ``child_workflow_id``, ``child_shard_key`` (always None: no sharding),
    ``started_at_epoch_ms`` and ``completed_at_epoch_ms`` (None while the step waits
    for its next attempt); and ours: ``task_id`` (a ``DBOS.run_task`` call's last
    attempt's Celery task id, else None), ``attempts`` (made so far), ``max_attempts``
    (the step's budget; None for operations that are not retried),
    ``retry_due_at_epoch_ms`` and ``attempt_history``: one dict per attempt with
    ``attempt``, ``started_at_epoch_ms``, ``completed_at_epoch_ms`` and ``error``.
    """
    steps: list[StepInfo] = []
    for step in store.workflows.list_steps(workflow_id, limit=limit, offset=offset):
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
                "output": _load(serializer, step.output) if load_output else None,
                "error": _load(serializer, step.error) if load_output else None,
                "child_workflow_id": None if task_id else step.child_workflow_id,
                "child_shard_key": None,
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
