"""The workflow listing (``list_workflows``, ``list_queued_workflows``): one SELECT
built from fixed fragments, one per filter given, every value bound as a parameter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.rows import WorkflowQuery
from celery_durable.store.sql.workflows import WORKFLOW_COLUMNS_WITHOUT_PAYLOAD

# The listings' statement timeout, for their transaction only ('30000ms'); a bound
# parameter, as SET cannot take one.
SET_STATEMENT_TIMEOUT = text("SELECT set_config('statement_timeout', :timeout, true)")

# (the query's field, the fragment it adds): a list matches any of its values.
_ANY_OF = (
    ("workflow_ids", "workflow_uuid = ANY(:workflow_ids)"),
    ("statuses", "status = ANY(:statuses)"),
    ("names", "name = ANY(:names)"),
    ("app_versions", "application_version = ANY(:app_versions)"),
    ("forked_from", "forked_from = ANY(:forked_from)"),
    ("parent_workflow_ids", "parent_workflow_id = ANY(:parent_workflow_ids)"),
    ("users", "authenticated_user = ANY(:users)"),
    ("queue_names", "dbos_queue_name = ANY(:queue_names)"),
    ("executor_ids", "executor_id = ANY(:executor_ids)"),
    ("schedule_names", "schedule_name = ANY(:schedule_names)"),
    # A prefix's LIKE wildcards are escaped by the caller's parameter (see _prefixes).
    ("workflow_id_prefixes", "workflow_uuid LIKE ANY(:workflow_id_prefixes)"),
)

_BOUNDS = (
    ("created_from_ms", "created_at_epoch_ms >= :created_from_ms"),
    ("created_until_ms", "created_at_epoch_ms <= :created_until_ms"),
    ("completed_from_ms", "completed_at_epoch_ms >= :completed_from_ms"),
    ("completed_until_ms", "completed_at_epoch_ms <= :completed_until_ms"),
    ("dequeued_from_ms", "started_at_epoch_ms >= :dequeued_from_ms"),
    ("dequeued_until_ms", "started_at_epoch_ms <= :dequeued_until_ms"),
)

_YES_OR_NO = (
    ("is_fork", "forked_from IS NOT NULL"),
    ("has_parent", "parent_workflow_id IS NOT NULL"),
    (
        "was_forked_from",
        f"EXISTS (SELECT 1 FROM {SCHEMA}.workflow_status AS fork "
        "WHERE fork.forked_from = workflow_status.workflow_uuid)",
    ),
)


def list_workflows(query: WorkflowQuery) -> tuple[TextClause, dict[str, Any]]:
    """The listing's statement and its parameters."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for field, fragment in _ANY_OF:
        values = getattr(query, field)
        if values is not None:
            conditions.append(fragment)
            params[field] = list(values)
    if query.workflow_id_prefixes is not None:
        params["workflow_id_prefixes"] = _prefixes(query.workflow_id_prefixes)
    for field, fragment in _BOUNDS:
        bound = getattr(query, field)
        if bound is not None:
            conditions.append(fragment)
            params[field] = bound
    for field, fragment in _YES_OR_NO:
        wanted = getattr(query, field)
        if wanted is not None:
            conditions.append(fragment if wanted else f"NOT ({fragment})")
    if query.attributes is not None:
        conditions.append("attributes @> CAST(:attributes AS jsonb)")
        params["attributes"] = query.attributes
    if query.queues_only:
        conditions.append("dbos_queue_name IS NOT NULL")
        if query.statuses is None:
            conditions.append("status IN ('DELAYED', 'ENQUEUED', 'PENDING')")
    return text(_select(query, conditions)), params | {
        "limit": query.limit,
        "offset": query.offset,
    }


def _select(query: WorkflowQuery, conditions: list[str]) -> str:
    inputs = "inputs" if query.load_input else "NULL AS inputs"
    outcome = "output, error" if query.load_output else "NULL AS output, NULL AS error"
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "DESC" if query.sort_desc else "ASC"
    sql = (
        f"SELECT {WORKFLOW_COLUMNS_WITHOUT_PAYLOAD}, {inputs}, {outcome} "
        f"FROM {SCHEMA}.workflow_status {where} "
        f"ORDER BY created_at_epoch_ms {order}, workflow_uuid {order}"
    )
    if query.limit is not None:
        sql += " LIMIT :limit"
    if query.offset is not None:
        sql += " OFFSET :offset"
    return sql


def _prefixes(prefixes: list[str]) -> list[str]:
    """Each prefix as a LIKE pattern: its own ``%``, ``_`` and ``\\`` match literally."""
    escaped = (p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in prefixes)
    return [f"{prefix}%" for prefix in escaped]
