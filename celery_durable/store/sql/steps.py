"""Step checkpoints: one step's row written by the execution that owns its workflow,
several executions' in one statement (group commit), and a workflow's steps read."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.sql.driver import driver_sql

# One statement, one transaction: the whole cost of a step's first execution. It also
# returns the workflow's status, so a cancellation is noticed at every step boundary
# without a round trip of its own.
#
# It is written only by the execution that owns the workflow (:owner_token, set by its
# claim). The row lock (FOR SHARE) orders it against a claim by another execution (an
# UPDATE of the row): the claim waits for this statement and then reads its checkpoint,
# or this statement waits for the claim and then finds another owner and writes
# nothing. Returns (the workflow's status, or NULL: not the owner; whether it wrote).
# A step's row written again (a retry's next attempt, its outcome), never once complete.
STEP_UPSERT = """ON CONFLICT (workflow_uuid, function_id) DO UPDATE
    SET output = excluded.output,
        error = excluded.error,
        attempts = excluded.attempts,
        attempt_log = excluded.attempt_log,
        retry_due_at_epoch_ms = excluded.retry_due_at_epoch_ms,
        completed_at_epoch_ms = excluded.completed_at_epoch_ms,
        child_workflow_id = excluded.child_workflow_id
    WHERE o.completed_at_epoch_ms IS NULL"""

# The columns a checkpoint's INSERT writes, in the order of its values.
STEP_COLUMNS = """workflow_uuid, function_id, function_name, output, error, attempts,
        attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
        child_workflow_id, max_attempts"""

RECORD_STEP = text(
    f"""
    WITH owner AS (
        SELECT w.status FROM {SCHEMA}.workflow_status AS w
        WHERE w.workflow_uuid = :workflow_uuid AND w.owner_token = :owner_token
        FOR SHARE
    ), recorded AS (
    INSERT INTO {SCHEMA}.operation_outputs AS o (
        workflow_uuid, function_id, function_name, output, error, attempts, attempt_log,
        retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
        child_workflow_id, max_attempts)
    SELECT :workflow_uuid, :function_id, :function_name, :output, :error, :attempts,
           :attempt_log, :retry_due_at_epoch_ms, :started_at_epoch_ms,
           :completed_at_epoch_ms, :child_workflow_id, :max_attempts
    FROM owner
    {STEP_UPSERT}
    RETURNING 1
    )
    SELECT (SELECT status FROM owner), EXISTS (SELECT 1 FROM recorded)
    """
)

# RECORD_STEP for several checkpoints of (usually) several workflows in one statement
# (group commit, see store/group_commit.py): :rows is a JSON array of RECORD_STEP's
# parameters. Per row, the same owner condition and row lock (taken in the workflows'
# order, as any multi-row lock should be; one primary-key lookup per row: a join would
# let the planner scan the whole table); returns (workflow_uuid, function_id, status or
# NULL, whether it wrote) per row.
RECORD_STEPS = text(
    f"""
    WITH batch AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS b (
            workflow_uuid text, owner_token bigint, function_id integer,
            function_name text, output text, error text, attempts integer,
            attempt_log text, retry_due_at_epoch_ms bigint, started_at_epoch_ms bigint,
            completed_at_epoch_ms bigint, child_workflow_id text, max_attempts integer)
    ), owner AS (
        SELECT w.workflow_uuid, w.status
        FROM (SELECT DISTINCT workflow_uuid, owner_token FROM batch ORDER BY 1) AS b
        CROSS JOIN LATERAL (
            SELECT s.workflow_uuid, s.status FROM {SCHEMA}.workflow_status AS s
            WHERE s.workflow_uuid = b.workflow_uuid AND s.owner_token = b.owner_token
            FOR SHARE
        ) AS w
    ), recorded AS (
    INSERT INTO {SCHEMA}.operation_outputs AS o (
        workflow_uuid, function_id, function_name, output, error, attempts, attempt_log,
        retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
        child_workflow_id, max_attempts)
    SELECT b.workflow_uuid, b.function_id, b.function_name, b.output, b.error, b.attempts,
           b.attempt_log, b.retry_due_at_epoch_ms, b.started_at_epoch_ms,
           b.completed_at_epoch_ms, b.child_workflow_id, b.max_attempts
    FROM batch AS b JOIN owner USING (workflow_uuid)
    {STEP_UPSERT}
    RETURNING o.workflow_uuid, o.function_id
    )
    SELECT b.workflow_uuid, b.function_id, owner.status, r.function_id IS NOT NULL
    FROM batch AS b
    LEFT JOIN owner USING (workflow_uuid)
    LEFT JOIN recorded AS r USING (workflow_uuid, function_id)
    """
)

LIST_STEPS = text(
    f"""
    SELECT function_id, function_name, output, error, child_workflow_id, attempts,
           attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
           max_attempts
    FROM {SCHEMA}.operation_outputs
    WHERE workflow_uuid = :workflow_uuid
    ORDER BY function_id
    LIMIT :limit OFFSET :offset
    """
)


# Per step, in the driver's placeholder style.
RECORD_STEP_SQL = driver_sql(RECORD_STEP)
RECORD_STEPS_SQL = driver_sql(RECORD_STEPS)
