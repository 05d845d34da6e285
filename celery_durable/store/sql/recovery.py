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
