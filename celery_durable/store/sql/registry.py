"""What workers declare: the workflow names they serve, their queues, and the
application versions they run (and the one a leaving worker last ran)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

REGISTER_WORKFLOW = text(
    f"""
    INSERT INTO {SCHEMA}.registered_workflows (
        name, first_registered_at_epoch_ms, last_registered_at_epoch_ms, last_executor_id)
    VALUES (:name, :now, :now, :executor_id)
    ON CONFLICT (name) DO UPDATE
    SET last_registered_at_epoch_ms = excluded.last_registered_at_epoch_ms,
        last_executor_id = excluded.last_executor_id
    """
)

# Before a worker registers its names: the workflows enqueued by name while no worker
# served it (a producer ahead of the deployment) are taken to be published now, rather
# than after the recovery sweep's grace period. Only names no worker has registered
# yet: a backlog of a name already served has its messages in the broker.
RELEASE_NEWLY_SERVED = text(
    f"""
    WITH fresh AS (
        SELECT unnest(CAST(:names AS text[])) AS name
        EXCEPT SELECT name FROM {SCHEMA}.registered_workflows
    )
    UPDATE {SCHEMA}.workflow_status AS w
    SET dispatch_generation = w.dispatch_generation + 1, next_dispatch_at_epoch_ms = :now
    FROM fresh
    WHERE w.name = fresh.name AND w.status = 'ENQUEUED'
      AND NOT w.execution_active AND NOT w.dispatch_parked
    RETURNING w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation AS generation,
              w.attributes -> 'dbos.otelContext' AS trace_carrier
    """
)

REGISTER_QUEUE = text(
    f"""
    INSERT INTO {SCHEMA}.queues (
        name, concurrency, worker_concurrency, limiter_limit, limiter_period_ms,
        priority_enabled, updated_at_epoch_ms)
    VALUES (:name, :concurrency, :worker_concurrency, :limiter_limit, :limiter_period_ms,
            :priority_enabled, :now)
    ON CONFLICT (name) DO UPDATE
    SET concurrency = excluded.concurrency,
        worker_concurrency = excluded.worker_concurrency,
        limiter_limit = excluded.limiter_limit,
        limiter_period_ms = excluded.limiter_period_ms,
        priority_enabled = excluded.priority_enabled,
        updated_at_epoch_ms = excluded.updated_at_epoch_ms
    """
)

# A worker leaving (warm shutdown): its version no longer counts as running; when a
# worker of that version was last seen is kept (version_last_seen: now, here; the
# row's last sweep, by the table's trigger).
FORGET_WORKER = text(
    f"""
    WITH gone AS (
        DELETE FROM {SCHEMA}.worker_versions WHERE executor_id = :executor_id
        RETURNING application_version, executor_id
    )
    INSERT INTO {SCHEMA}.version_last_seen AS s (
        application_version, last_seen_epoch_ms, executor_id)
    SELECT application_version, :now, executor_id FROM gone
    ON CONFLICT (application_version) DO UPDATE
    SET last_seen_epoch_ms = GREATEST(s.last_seen_epoch_ms, excluded.last_seen_epoch_ms),
        executor_id = CASE WHEN excluded.last_seen_epoch_ms >= s.last_seen_epoch_ms
                           THEN excluded.executor_id ELSE s.executor_id END
    """
)

# Whether some worker has registered (served) a workflow name.
IS_REGISTERED = text(
    f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.registered_workflows WHERE name = :name)"
)

# The workers that said which version they run, newest first.
LIST_WORKER_VERSIONS = text(
    f"SELECT executor_id, application_version, last_seen_epoch_ms "
    f"FROM {SCHEMA}.worker_versions ORDER BY last_seen_epoch_ms DESC"
)
