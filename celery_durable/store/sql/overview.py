"""The statements of overviews (dashboards, metrics): pages of workflows, counts per
status, queue depths and what a workflow exchanged. All of them only read.

Only :mod:`celery_durable.store.overview_store` executes them. Parameters are always bound;
the filters are fixed fragments chosen by which filters are set.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from celery_durable.store.migrations.schema import SCHEMA

# A row of a workflow listing: no inputs or outputs (a page shows none of them).
_SUMMARY_COLUMNS = """
    workflow_uuid, name, status, queue_name, authenticated_user, executor_id,
    recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms, started_at_epoch_ms,
    completed_at_epoch_ms, parent_workflow_id
"""

# Each filter's fragment, by the name of its bound parameter.
FILTER_FRAGMENTS = {
    "statuses": "status = ANY(:statuses)",
    "name": "name = :name",
    "queue_name": "queue_name = :queue_name",
    "start_epoch_ms": "created_at_epoch_ms >= :start_epoch_ms",
    "end_epoch_ms": "created_at_epoch_ms <= :end_epoch_ms",
    "id_prefix": "starts_with(workflow_uuid, :id_prefix)",
    "exclude_id_prefix": "NOT starts_with(workflow_uuid, :exclude_id_prefix)",
    "authenticated_user": "authenticated_user = :authenticated_user",
    "application_version": "application_version = :application_version",
    "parent_workflow_id": "parent_workflow_id = :parent_workflow_id",
}


def _where(filters: list[str]) -> str:
    fragments = [FILTER_FRAGMENTS[name] for name in filters]
    return f"WHERE {' AND '.join(fragments)}" if fragments else ""


def page_of_workflows(filters: list[str]) -> TextClause:
    """Newest first, ``:limit`` rows from ``:offset``, where every named filter holds."""
    return text(
        f"SELECT {_SUMMARY_COLUMNS} FROM {SCHEMA}.workflow_status {_where(filters)} "
        "ORDER BY created_at_epoch_ms DESC, workflow_uuid DESC LIMIT :limit OFFSET :offset"
    )


def counts_by_status(filters: list[str]) -> TextClause:
    """How many workflows of each status match every named filter."""
    return text(
        f"SELECT status, count(*) AS workflows FROM {SCHEMA}.workflow_status "
        f"{_where(filters)} GROUP BY status"
    )


# Every (name, status) pair with its count: bounded by the workflow names, not the rows.
COUNTS_BY_NAME_AND_STATUS = text(
    f"SELECT name, status, count(*) AS workflows FROM {SCHEMA}.workflow_status "
    "GROUP BY name, status ORDER BY name, status"
)

# Per queue: the waiting and running workflows, the queue's declared limits (if a worker
# declared it) and the creation time of its oldest waiting workflow.
QUEUE_DEPTHS = text(
    f"""
    WITH depth AS (
        SELECT queue_name,
               count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued,
               count(*) FILTER (WHERE status = 'PENDING') AS pending,
               min(created_at_epoch_ms) FILTER (WHERE status = 'ENQUEUED')
                   AS oldest_enqueued_at_epoch_ms
        FROM {SCHEMA}.workflow_status
        WHERE status IN ('ENQUEUED', 'PENDING') AND queue_name IS NOT NULL
        GROUP BY queue_name
    )
    SELECT COALESCE(q.name, d.queue_name) AS queue_name,
           COALESCE(d.enqueued, 0) AS enqueued, COALESCE(d.pending, 0) AS pending,
           d.oldest_enqueued_at_epoch_ms,
           q.name IS NOT NULL AS declared, q.concurrency, q.worker_concurrency,
           q.limiter_limit, q.limiter_period_ms, COALESCE(q.priority_enabled, false)
               AS priority_enabled
    FROM depth AS d
    FULL OUTER JOIN {SCHEMA}.queues AS q ON q.name = d.queue_name
    ORDER BY 1
    """
)

# The messages sent to a workflow, oldest first (consumed or not).
MESSAGES_TO = text(
    f"""
    SELECT topic, message, created_at_epoch_ms, consumed_by_function_id
    FROM {SCHEMA}.notifications
    WHERE destination_uuid = :workflow_uuid
    ORDER BY message_id
    LIMIT :limit
    """
)

# The keys of a workflow's streams, each with how many values it holds.
STREAM_KEYS = text(
    f"""
    SELECT key, count(*) AS stored_values FROM {SCHEMA}.streams
    WHERE workflow_uuid = :workflow_uuid
    GROUP BY key ORDER BY key
    """
)

# What a workflow's row says about its execution now: whether an execution holds it
# (execution_active, set by the claim; its executor and the claim's time are
# executor_id and updated_at_epoch_ms) and the workflow a fork copied.
EXECUTION = text(
    f"""
    SELECT status, execution_active, executor_id, updated_at_epoch_ms,
           next_dispatch_at_epoch_ms, forked_from
    FROM {SCHEMA}.workflow_status
    WHERE workflow_uuid = :workflow_uuid
    """
)

# The forks of a workflow, newest first.
FORKS_OF = text(
    f"""
    SELECT workflow_uuid, status, created_at_epoch_ms FROM {SCHEMA}.workflow_status
    WHERE forked_from = :workflow_uuid
    ORDER BY created_at_epoch_ms DESC, workflow_uuid DESC
    LIMIT :limit
    """
)

# When a worker of each application version was last seen: the running workers' own
# rows, and the record a leaving worker wrote.
VERSIONS_LAST_SEEN = text(
    f"""
    SELECT application_version, max(last_seen_epoch_ms) AS last_seen_epoch_ms FROM (
        SELECT application_version, last_seen_epoch_ms FROM {SCHEMA}.worker_versions
        UNION ALL
        SELECT application_version, last_seen_epoch_ms FROM {SCHEMA}.version_last_seen
    ) AS seen
    GROUP BY application_version
    """
)
