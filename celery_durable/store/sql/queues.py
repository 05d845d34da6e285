"""Queues declared at run time (``DBOS.register_queue``): registering, reading, changing
and deleting their rows. (Queues declared in code are recorded by ``registry``.)"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from celery_durable.store.migrations.schema import SCHEMA

QUEUE_COLUMNS = (
    "name, concurrency, worker_concurrency, limiter_limit, limiter_period_ms, "
    "priority_enabled, partition_concurrency, partition_worker_concurrency, "
    "partition_limiter_limit, partition_limiter_period_ms, polling_interval_sec, "
    "registered, application_version"
)

# Inserts a queue, or updates the one of that name as ``on_conflict`` says: always,
# never, or ("update_if_latest_version") unless another application version registered
# it and a worker still runs that version. Returns ``inserted`` when a row was written.
UPSERT_QUEUE = text(
    f"""
    INSERT INTO {SCHEMA}.queues AS q (
        name, concurrency, worker_concurrency, limiter_limit, limiter_period_ms,
        priority_enabled, partition_concurrency, partition_worker_concurrency,
        partition_limiter_limit, partition_limiter_period_ms, polling_interval_sec,
        registered, application_version, updated_at_epoch_ms)
    VALUES (:name, :concurrency, :worker_concurrency, :limiter_limit, :limiter_period_ms,
            true, :partition_concurrency, :partition_worker_concurrency,
            :partition_limiter_limit, :partition_limiter_period_ms, :polling_interval_sec,
            true, :application_version, :now)
    ON CONFLICT (name) DO UPDATE
    SET concurrency = excluded.concurrency,
        worker_concurrency = excluded.worker_concurrency,
        limiter_limit = excluded.limiter_limit,
        limiter_period_ms = excluded.limiter_period_ms,
        partition_concurrency = excluded.partition_concurrency,
        partition_worker_concurrency = excluded.partition_worker_concurrency,
        partition_limiter_limit = excluded.partition_limiter_limit,
        partition_limiter_period_ms = excluded.partition_limiter_period_ms,
        polling_interval_sec = excluded.polling_interval_sec,
        registered = true,
        application_version = excluded.application_version,
        updated_at_epoch_ms = excluded.updated_at_epoch_ms
    WHERE :on_conflict = 'always_update'
       OR (:on_conflict = 'update_if_latest_version'
           AND (q.application_version IS NULL
                OR q.application_version = excluded.application_version
                OR NOT EXISTS (SELECT 1 FROM {SCHEMA}.worker_versions AS v
                               WHERE v.application_version = q.application_version)))
    RETURNING (xmax = 0) AS inserted
    """
)

GET_QUEUE = text(f"SELECT {QUEUE_COLUMNS} FROM {SCHEMA}.queues WHERE name = :name")

# The queues registered at run time (DBOS lists its database-backed queues only).
LIST_QUEUES = text(f"SELECT {QUEUE_COLUMNS} FROM {SCHEMA}.queues WHERE registered ORDER BY name")

DELETE_QUEUE = text(f"DELETE FROM {SCHEMA}.queues WHERE name = :name")

# The names of the queues registered at run time (the workers' sweeps consume them).
REGISTERED_QUEUE_NAMES = text(f"SELECT name FROM {SCHEMA}.queues WHERE registered ORDER BY name")

# The active workflow of a queue that holds a deduplication id.
DEDUPLICATION_HOLDER = text(
    f"SELECT workflow_uuid FROM {SCHEMA}.workflow_status "
    "WHERE queue_name = :queue_name AND deduplication_id = :deduplication_id "
    "AND status IN ('ENQUEUED', 'PENDING')"
)

# The columns a Queue's setters change, each by its own statement.
SETTABLE_COLUMNS = (
    "concurrency",
    "worker_concurrency",
    "limiter_limit",
    "limiter_period_ms",
    "partition_concurrency",
    "partition_worker_concurrency",
    "partition_limiter_limit",
    "partition_limiter_period_ms",
    "polling_interval_sec",
)


def update_queue(columns: tuple[str, ...]) -> TextClause:
    """Sets ``columns`` (each one of ``SETTABLE_COLUMNS``) of queue ``:name``."""
    unknown = set(columns) - set(SETTABLE_COLUMNS)
    if unknown:
        raise ValueError(f"not a settable queue column: {sorted(unknown)}")
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    return text(
        f"UPDATE {SCHEMA}.queues SET {assignments}, updated_at_epoch_ms = :now "
        "WHERE name = :name RETURNING name"
    )
