"""The versioned schema of the system database.

Each migration is applied once, in order, in one transaction that holds a
transaction-level advisory lock, so that any number of processes may migrate at once.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

SCHEMA = "celery_durable"

# Serializes concurrent migrations (an arbitrary constant: "cd-migrate").
MIGRATION_LOCK_KEY = 0x63642D6D69677261

BOOTSTRAP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (
    version integer PRIMARY KEY,
    applied_at_epoch_ms bigint NOT NULL
);
"""

_V1 = f"""
CREATE TABLE {SCHEMA}.workflow_status (
    workflow_uuid text PRIMARY KEY,
    name text NOT NULL,
    status text NOT NULL,
    queue_name text,
    inputs text NOT NULL,
    output text,
    error text,
    authenticated_user text,
    executor_id text,
    recovery_attempts integer NOT NULL DEFAULT 0,
    max_recovery_attempts integer NOT NULL,
    created_at_epoch_ms bigint NOT NULL,
    updated_at_epoch_ms bigint NOT NULL,
    started_at_epoch_ms bigint,
    completed_at_epoch_ms bigint
);
CREATE INDEX workflow_status_status_idx
    ON {SCHEMA}.workflow_status (status, updated_at_epoch_ms);
CREATE INDEX workflow_status_created_idx
    ON {SCHEMA}.workflow_status (created_at_epoch_ms);
CREATE INDEX workflow_status_name_idx
    ON {SCHEMA}.workflow_status (name, created_at_epoch_ms);

-- One row per step. No foreign key to workflow_status: the key check would lock the
-- workflow's row on every checkpoint, and rows are only ever written by the owner of
-- an existing workflow.
CREATE TABLE {SCHEMA}.operation_outputs (
    workflow_uuid text NOT NULL,
    function_id integer NOT NULL,
    function_name text NOT NULL,
    output text,
    error text,
    child_workflow_id text,
    attempts integer NOT NULL,
    attempt_log text,
    retry_due_at_epoch_ms bigint,
    started_at_epoch_ms bigint NOT NULL,
    completed_at_epoch_ms bigint,
    PRIMARY KEY (workflow_uuid, function_id)
);

-- Claims a workflow for one execution, in one round trip.
--
-- The fence is a session-level advisory lock on the workflow id, held on the
-- execution's connection and released by the server if that connection dies. The lock
-- is taken first and every read comes after it, in a statement of its own (a volatile
-- function takes a fresh snapshot per statement), so the checkpoints returned include
-- everything the previous owner committed before it let go of the fence.
CREATE FUNCTION {SCHEMA}.claim_workflow(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    lock_key bigint := hashtextextended(p_workflow_uuid, 0);
BEGIN
    IF NOT pg_try_advisory_lock(lock_key) THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::json;
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        UPDATE {SCHEMA}.workflow_status AS w
        SET status = 'PENDING',
            executor_id = p_executor_id,
            updated_at_epoch_ms = p_now_epoch_ms,
            started_at_epoch_ms = COALESCE(w.started_at_epoch_ms, p_now_epoch_ms)
        WHERE w.workflow_uuid = p_workflow_uuid AND w.status IN ('ENQUEUED', 'PENDING')
        RETURNING w.name, w.inputs, w.authenticated_user
    )
    SELECT 'claimed'::text, c.name, 'PENDING'::text, c.inputs, c.authenticated_user,
           (SELECT json_agg(json_build_array(
                       o.function_id, o.function_name, o.output, o.error, o.attempts,
                       o.attempt_log, o.retry_due_at_epoch_ms, o.started_at_epoch_ms,
                       o.completed_at_epoch_ms) ORDER BY o.function_id)
            FROM {SCHEMA}.operation_outputs AS o
            WHERE o.workflow_uuid = p_workflow_uuid)
    FROM claimed AS c;
    IF FOUND THEN
        RETURN;
    END IF;
    -- Missing or not runnable (finished, cancelled): let go at once.
    PERFORM pg_advisory_unlock(lock_key);
    RETURN QUERY
    SELECT CASE WHEN w.workflow_uuid IS NULL THEN 'missing' ELSE 'finished' END,
           w.name, w.status, NULL::text, NULL::text, NULL::json
    FROM (SELECT 1) AS one
    LEFT JOIN {SCHEMA}.workflow_status AS w ON w.workflow_uuid = p_workflow_uuid;
END;
$$;
"""

# (version, SQL) in order.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1),)

LATEST_VERSION = MIGRATIONS[-1][0]
