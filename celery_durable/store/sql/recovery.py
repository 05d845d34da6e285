"""The sweeps: recovering workflows whose execution was lost, and keeping time
(deadlines, delayed starts, parked dispatches that came due)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

KEEP_TIME = text(
    f"SELECT kind, workflow_uuid, parent_workflow_id, name, queue_name, generation "
    f"FROM {SCHEMA}.keep_time(:now, :limit)"
)

RECOVER_WORKFLOWS = text(
    f"SELECT workflow_uuid, name, queue_name, generation, reason "
    f"FROM {SCHEMA}.recover_workflows(:now, :grace_ms, :limit, :app_version, :executor_id)"
)

# A producer without a broker asks the workers to publish a workflow it committed.
NOTIFY_ENQUEUED = text("SELECT pg_notify(:channel, :payload)")

# One worker (whichever advances the generation first) publishes it; the others find the
# generation moved on. A workflow executing meanwhile is left alone.
TAKE_FOR_PUBLISHING = text(
    f"UPDATE {SCHEMA}.workflow_status "
    "SET dispatch_generation = dispatch_generation + 1, next_dispatch_at_epoch_ms = :now "
    "WHERE workflow_uuid = :workflow_id AND dispatch_generation = :generation "
    "AND status IN ('ENQUEUED', 'PENDING') AND NOT execution_active AND NOT dispatch_parked "
    "RETURNING workflow_uuid, name, queue_name, dispatch_generation AS generation, "
    # The trace a client's EnqueueOptions(otel_context=) asked it to continue.
    "attributes -> 'dbos.otelContext' AS trace_carrier"
)
