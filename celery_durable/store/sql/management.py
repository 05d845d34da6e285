"""Managing workflows as DBOS 3.4 does: waiting for the first of several, deleting
them (with their children), their attributes and delays, and rewinding one."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

# The first of these workflows to have finished (not DELAYED, ENQUEUED or PENDING).
FIRST_FINISHED = text(
    f"""
    SELECT workflow_uuid FROM {SCHEMA}.workflow_status
    WHERE workflow_uuid = ANY(:workflow_ids)
      AND status NOT IN ('DELAYED', 'ENQUEUED', 'PENDING')
    ORDER BY completed_at_epoch_ms NULLS LAST, workflow_uuid
    LIMIT 1
    """
)

# Every descendant of these workflows (children, grandchildren, ...), not themselves.
DESCENDANTS = text(
    f"""
    WITH RECURSIVE descendants AS (
        SELECT workflow_uuid FROM {SCHEMA}.workflow_status
        WHERE parent_workflow_id = ANY(:workflow_ids)
        UNION
        SELECT w.workflow_uuid FROM {SCHEMA}.workflow_status AS w
        JOIN descendants AS d ON w.parent_workflow_id = d.workflow_uuid
    )
    SELECT workflow_uuid FROM descendants
    """
)

# Deletes workflows and everything recorded for them, in one statement.
DELETE_WORKFLOWS = text(
    f"""
    WITH doomed AS (SELECT unnest(CAST(:workflow_ids AS text[])) AS workflow_uuid),
    operations AS (
        DELETE FROM {SCHEMA}.operation_outputs
        WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
    ), events AS (
        DELETE FROM {SCHEMA}.workflow_events
        WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
    ), history AS (
        DELETE FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
    ), stream_values AS (
        DELETE FROM {SCHEMA}.streams
        WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
    ), messages AS (
        DELETE FROM {SCHEMA}.notifications
        WHERE destination_uuid IN (SELECT workflow_uuid FROM doomed)
    )
    DELETE FROM {SCHEMA}.workflow_status
    WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
    RETURNING workflow_uuid
    """
)

# Replaces a workflow's attributes (NULL: none), or merges top-level keys into them.
UPDATE_ATTRIBUTES = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET attributes = CASE
            WHEN :merge THEN
                (CASE WHEN jsonb_typeof(attributes) = 'object' THEN attributes
                      ELSE '{{}}'::jsonb END) || CAST(:attributes AS jsonb)
            ELSE CAST(:attributes AS jsonb) END,
        updated_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid
    RETURNING workflow_uuid
    """
)

# A DELAYED workflow's new start time (the timekeeper enqueues it then).
SET_DELAY = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET next_dispatch_at_epoch_ms = :delay_until, updated_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status = 'DELAYED'
    RETURNING workflow_uuid
    """
)
