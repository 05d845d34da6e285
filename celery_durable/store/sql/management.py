"""Managing workflows as DBOS 3.4 does: waiting for the first of several, deleting
them (with their children), their attributes and delays, and rewinding one."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.core.records import INTERNAL_QUEUE_NAME
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
    ), canvas AS (
        DELETE FROM {SCHEMA}.workflow_canvas
        WHERE workflow_uuid IN (SELECT workflow_uuid FROM doomed)
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


# -- rewinding a finished workflow to a step (one transaction, these in order) -----------

# The workflow's status, locked for the rewind.
LOCK_FOR_REWIND = text(
    f"SELECT status FROM {SCHEMA}.workflow_status WHERE workflow_uuid = :workflow_uuid FOR UPDATE"
)

# Events set at or past the cut: dropped, then each restored to its last value before
# the cut (the history is the undo log), as DBOS rewinds them.
DROP_REWOUND_EVENTS = text(
    f"""
    DELETE FROM {SCHEMA}.workflow_events AS e
    WHERE e.workflow_uuid = :workflow_uuid
      AND EXISTS (SELECT 1 FROM {SCHEMA}.workflow_events_history AS h
                  WHERE h.workflow_uuid = :workflow_uuid AND h.key = e.key
                    AND h.function_id >= :start_step)
    """
)

RESTORE_REWOUND_EVENTS = text(
    f"""
    INSERT INTO {SCHEMA}.workflow_events (workflow_uuid, key, value)
    SELECT DISTINCT ON (h.key) :workflow_uuid, h.key, h.value
    FROM {SCHEMA}.workflow_events_history AS h
    WHERE h.workflow_uuid = :workflow_uuid AND h.function_id < :start_step
      AND EXISTS (SELECT 1 FROM {SCHEMA}.workflow_events_history AS past
                  WHERE past.workflow_uuid = :workflow_uuid AND past.key = h.key
                    AND past.function_id >= :start_step)
    ORDER BY h.key, h.function_id DESC
    """
)

# What the discarded run recorded: its checkpoints and event history from the cut on,
# the close markers it wrote (its stream values stay, as in DBOS), and the messages it
# consumed from the cut on or has not consumed.
DISCARD_REWOUND_RUN = text(
    f"""
    WITH operations AS (
        DELETE FROM {SCHEMA}.operation_outputs
        WHERE workflow_uuid = :workflow_uuid AND function_id >= :start_step
    ), history AS (
        DELETE FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid = :workflow_uuid AND function_id >= :start_step
    ), close_markers AS (
        DELETE FROM {SCHEMA}.streams
        WHERE workflow_uuid = :workflow_uuid AND function_id >= :start_step
          AND value = :closed_marker
    )
    DELETE FROM {SCHEMA}.notifications
    WHERE destination_uuid = :workflow_uuid
      AND (consumed_by_function_id >= :start_step OR consumed_by_function_id IS NULL)
    """
)

# Enqueued again under its own id, as RESUME_WORKFLOW does, without its outcome.
REQUEUE_REWOUND = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = 'ENQUEUED', output = NULL, error = NULL, completed_at_epoch_ms = NULL,
        recovery_attempts = 0, execution_active = false, dispatch_parked = false,
        wake_requested = false, wait_key = NULL,
        dispatch_generation = dispatch_generation + 1, next_dispatch_at_epoch_ms = :now,
        updated_at_epoch_ms = :now, queue_name = COALESCE(:queue_name, queue_name),
        dbos_queue_name = COALESCE(:queue_name, '{INTERNAL_QUEUE_NAME}'),
        application_version = COALESCE(:application_version, application_version),
        workflow_deadline_epoch_ms = NULL, started_at_epoch_ms = NULL,
        deduplication_id = NULL
    WHERE workflow_uuid = :workflow_uuid
    RETURNING name, queue_name, dispatch_generation
    """
)


# -- application versions --------------------------------------------------------------

REGISTER_VERSION = text(
    f"""
    INSERT INTO {SCHEMA}.application_versions
        (version_id, version_name, version_timestamp, created_at)
    VALUES (:version_id, :version_name, :now, :now)
    ON CONFLICT (version_name) DO NOTHING
    """
)

LIST_VERSIONS = text(
    "SELECT version_id, version_name, version_timestamp, created_at "
    f"FROM {SCHEMA}.application_versions ORDER BY version_timestamp DESC, created_at DESC"
)

PROMOTE_VERSION = text(
    f"UPDATE {SCHEMA}.application_versions SET version_timestamp = :now "
    "WHERE version_name = :version_name"
)
