"""A Celery task's outcome, recorded by its callback into the workflow that called it."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.sql.driver import driver_sql
from celery_durable.store.sql.steps import STEP_COLUMNS, STEP_UPSERT

# One statement: the attempt's outcome (once: only while that attempt, and no other,
# is in flight with nothing reported), and the workflow woken as a finished child wakes
# its parent (``WAKE_PARENT``). The workflow's row is locked first, as a checkpoint of
# its execution locks it (``RECORD_STEP``) before it writes the same operation row, so
# the two cannot deadlock. A success completes the operation; a failure only reports
# the attempt's error (the workflow decides whether to retry). Returns one row: whether
# it recorded, and the workflow's dispatch when it must be published (NULLs otherwise).
RECORD_TASK_OUTCOME = text(
    f"""
    WITH caller AS (
        -- Durable even on a connection with asynchronous commit (see v16).
        SELECT workflow_uuid, set_config('synchronous_commit', 'on', true)
        FROM {SCHEMA}.workflow_status
        WHERE workflow_uuid = :workflow_uuid
        FOR UPDATE
    ), recorded AS (
        UPDATE {SCHEMA}.operation_outputs AS o
        SET output = :output, error = :error,
            completed_at_epoch_ms = CASE WHEN :succeeded THEN :now END,
            retry_due_at_epoch_ms = CASE WHEN :succeeded THEN NULL
                                         ELSE o.retry_due_at_epoch_ms END
        FROM caller
        WHERE o.workflow_uuid = caller.workflow_uuid AND o.function_id = :function_id
          AND o.child_workflow_id = :task_id
          AND o.completed_at_epoch_ms IS NULL AND o.error IS NULL
        RETURNING o.workflow_uuid
    ), woken AS (
        UPDATE {SCHEMA}.workflow_status AS w
        SET wake_requested = w.execution_active,
            dispatch_generation = w.dispatch_generation
                + (CASE WHEN w.execution_active THEN 0 ELSE 1 END),
            next_dispatch_at_epoch_ms = :now,
            dispatch_parked = false
        FROM recorded
        WHERE w.workflow_uuid = recorded.workflow_uuid AND w.status = 'PENDING'
        RETURNING w.name, w.queue_name, w.dispatch_generation,
                  NOT w.execution_active AS publish
    )
    SELECT EXISTS (SELECT 1 FROM recorded) AS recorded,
           woken.name, woken.queue_name, woken.dispatch_generation, woken.publish
    FROM (SELECT 1) AS one LEFT JOIN woken ON true
    """
)

RECORD_TASK_OUTCOME_SQL = driver_sql(RECORD_TASK_OUTCOME)

# A ``DBOS.run_task`` call's attempt recorded in flight and the workflow parked until its
# callback, in one statement on the fence: ``RECORD_STEP`` (only by the execution that
# owns the workflow) and then ``RESCHEDULE_WORKFLOW`` (only if the checkpoint was
# written: the task is sent once both are committed). Returns no row when nothing was
# written (another owner, or the workflow no longer PENDING: then nothing is sent);
# else the reschedule's (generation, due time, parked).
#
# A parked workflow keeps the look-again time it already has when that is at most
# ``KEPT_DUE_MS`` (and 1% of the wait) before the new one (the next call of a workflow
# that waits for task after task without a timeout: a day ahead, milliseconds apart). The time is an
# indexed column: left alone, the row's update stays on its page (with the claim of
# ``claim_after_task``, v19, that leaves it alone too), instead of a new entry in every
# index of ``workflow_status`` per call. Looking again that much early is harmless (the
# workflow finds nothing due and parks again); the due time returned is still ``:due``.
KEPT_DUE_MS = 60_000
RECORD_AND_PARK = text(
    f"""
    WITH owner AS (
        SELECT w.workflow_uuid FROM {SCHEMA}.workflow_status AS w
        WHERE w.workflow_uuid = :workflow_uuid AND w.owner_token = :owner_token
          AND w.status = 'PENDING'
        FOR UPDATE
    ), recorded AS (
        INSERT INTO {SCHEMA}.operation_outputs AS o ({STEP_COLUMNS})
        SELECT :workflow_uuid, :function_id, :function_name, :output, :error, :attempts,
               :attempt_log, :retry_due_at_epoch_ms, :started_at_epoch_ms,
               :completed_at_epoch_ms, :child_workflow_id, :max_attempts
        FROM owner
        {STEP_UPSERT}
        RETURNING o.workflow_uuid
    )
    UPDATE {SCHEMA}.workflow_status AS w
    SET execution_active = false,
        dispatch_generation = w.dispatch_generation + 1,
        next_dispatch_at_epoch_ms = CASE
            WHEN w.wake_requested THEN :now
            WHEN :parked AND w.next_dispatch_at_epoch_ms
                BETWEEN :due - LEAST({KEPT_DUE_MS}, (:due - :now) / 100) AND :due
                THEN w.next_dispatch_at_epoch_ms
            ELSE :due END,
        dispatch_parked = :parked AND NOT w.wake_requested,
        wake_requested = false,
        wait_key = NULL,
        updated_at_epoch_ms = :now
    FROM recorded
    WHERE w.workflow_uuid = recorded.workflow_uuid
    RETURNING w.dispatch_generation,
              CASE WHEN w.dispatch_parked THEN :due ELSE w.next_dispatch_at_epoch_ms END,
              w.dispatch_parked, pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))
    """
)

RECORD_AND_PARK_SQL = driver_sql(RECORD_AND_PARK)

# The outcome recorded and the woken workflow claimed, in one round trip on the fence
# (``claim_after_task``, schema version 13).
CLAIM_AFTER_TASK = text(
    f"SELECT outcome, name, status, inputs, authenticated_user, checkpoints, wait_ms, "
    f"parent_workflow_id, app_version, woken_name, woken_queue, woken_generation "
    f"FROM {SCHEMA}.claim_after_task("
    ":workflow_uuid, :function_id, :task_id, :output, :error, :executor_id, :now, "
    ":max_recovery_attempts, :app_version, :live_ms, :owner_token)"
)

CLAIM_AFTER_TASK_SQL = driver_sql(CLAIM_AFTER_TASK)
