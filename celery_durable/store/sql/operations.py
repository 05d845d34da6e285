"""The whole-workflow operations from outside its execution: cancel, resume, fork, and
waking a parent whose child finished."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.core.records import INTERNAL_QUEUE_NAME
from celery_durable.store.migrations.schema import SCHEMA

CANCEL_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = 'CANCELLED', dispatch_parked = false, updated_at_epoch_ms = :now,
        completed_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')
    RETURNING workflow_uuid
    """
)

# Runs the workflow again from its checkpoints: a new generation, a fresh recovery
# budget, no outcome, and (as DBOS) no deadline or deduplication id: its timeout counts
# again from when a worker next starts it. A DELAYED workflow is enqueued now, its delay
# dropped (as DBOS). An ERROR workflow only with :include_failed (DBOS 3.4 leaves it
# alone); on :queue_name when given.
RESUME_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = 'ENQUEUED', output = NULL, error = NULL, completed_at_epoch_ms = NULL,
        recovery_attempts = 0, execution_active = false, dispatch_parked = false,
        dispatch_generation = dispatch_generation + 1, next_dispatch_at_epoch_ms = :now,
        updated_at_epoch_ms = :now, queue_name = COALESCE(:queue_name, queue_name),
        dbos_queue_name = COALESCE(:queue_name, '{INTERNAL_QUEUE_NAME}'),
        workflow_deadline_epoch_ms = NULL, started_at_epoch_ms = NULL,
        deduplication_id = NULL
    WHERE workflow_uuid = :workflow_uuid
      AND (status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'DELAYED')
           OR (:include_failed AND status = 'ERROR'))
    RETURNING name, queue_name, dispatch_generation
    """
)

# A new workflow with the same inputs, identity and attributes, and the checkpoints
# before :start_step (their children renamed as :replacement_children, a JSON object,
# maps them), and the events and stream values those operations wrote (messages are not
# copied, as in DBOS). It runs on :queue_name (None: the original's queue) with the
# timeout :workflow_timeout_ms (None: none).
FORK_WORKFLOW = text(
    f"""
    WITH source AS (
        SELECT * FROM {SCHEMA}.workflow_status WHERE workflow_uuid = :workflow_uuid
    ), forked AS (
        INSERT INTO {SCHEMA}.workflow_status (
            workflow_uuid, name, status, queue_name, inputs, authenticated_user,
            max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms,
            next_dispatch_at_epoch_ms, priority, authenticated_roles, assumed_role,
            application_version, forked_from, attributes, workflow_timeout_ms,
            dbos_queue_name)
        -- The fork runs on the version asked for, or on the first worker to claim it.
        SELECT :forked_uuid, name, 'ENQUEUED', COALESCE(:queue_name, queue_name), inputs,
               authenticated_user, max_recovery_attempts, :now, :now, :now, priority,
               authenticated_roles, assumed_role, :application_version, :workflow_uuid,
               attributes, :workflow_timeout_ms,
               COALESCE(:queue_name, '{INTERNAL_QUEUE_NAME}')
        FROM source
        RETURNING name, queue_name
    ), copied AS (
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, output, error, child_workflow_id,
            attempts, attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms,
            completed_at_epoch_ms, max_attempts)
        SELECT :forked_uuid, function_id, function_name, output, error,
               COALESCE(CAST(:replacement_children AS jsonb) ->> child_workflow_id,
                        child_workflow_id),
               attempts, attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms,
               completed_at_epoch_ms, max_attempts
        FROM {SCHEMA}.operation_outputs
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND completed_at_epoch_ms IS NOT NULL
          AND EXISTS (SELECT 1 FROM forked)
    ), copied_history AS (
        INSERT INTO {SCHEMA}.workflow_events_history (workflow_uuid, function_id, key, value)
        SELECT :forked_uuid, function_id, key, value
        FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
    ), copied_events AS (
        -- Each key's latest value among the copied history (as DBOS rebuilds it).
        INSERT INTO {SCHEMA}.workflow_events (workflow_uuid, key, value)
        SELECT DISTINCT ON (key) :forked_uuid, key, value
        FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
        ORDER BY key, function_id DESC
    ), copied_streams AS (
        INSERT INTO {SCHEMA}.streams (workflow_uuid, key, "offset", value, function_id)
        SELECT :forked_uuid, key, "offset", value, function_id
        FROM {SCHEMA}.streams
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
    )
    SELECT name, queue_name FROM forked
    """
)

# A child finished: run its parent now. If the parent is executing, ask it to come
# back at once when it next waits (wake_requested); otherwise publish it again.
WAKE_PARENT = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET wake_requested = execution_active,
        dispatch_generation = dispatch_generation + (CASE WHEN execution_active THEN 0 ELSE 1 END),
        next_dispatch_at_epoch_ms = :now,
        dispatch_parked = false
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING name, queue_name, dispatch_generation, NOT execution_active AS publish
    """
)
