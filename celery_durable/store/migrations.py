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
    completed_at_epoch_ms bigint,
    -- Dispatch bookkeeping. Every message published for the workflow carries its
    -- generation as Celery's `retries`; a delivery older than the row's is stale.
    dispatch_generation integer NOT NULL DEFAULT 0,
    -- When the next delivery is expected (enqueue time, or a retry's due time).
    next_dispatch_at_epoch_ms bigint NOT NULL,
    -- A delay too long for the broker: the recovery sweep publishes it when due.
    dispatch_parked boolean NOT NULL DEFAULT false,
    -- True while an execution owns the workflow. Found true by a claim (whose fence
    -- was free), it means the previous execution died: a recovery attempt.
    execution_active boolean NOT NULL DEFAULT false
);
CREATE INDEX workflow_status_created_idx
    ON {SCHEMA}.workflow_status (created_at_epoch_ms);
CREATE INDEX workflow_status_name_idx
    ON {SCHEMA}.workflow_status (name, created_at_epoch_ms);
CREATE INDEX workflow_status_status_idx
    ON {SCHEMA}.workflow_status (status, created_at_epoch_ms);
CREATE INDEX workflow_status_dispatch_idx
    ON {SCHEMA}.workflow_status (next_dispatch_at_epoch_ms)
    WHERE status IN ('ENQUEUED', 'PENDING');

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
-- execution's connection and released by the server if that connection dies. It is
-- taken first. The UPDATE then waits for any writer of the row (a previous owner
-- releases the fence inside its last statement, before that statement commits), and
-- the checkpoints are read by a later statement, whose fresh snapshot includes
-- everything the previous owner committed.
--
-- p_generation is the delivery's Celery `retries` (NULL for an in-process call);
-- p_max_recovery_attempts is the executing code's declaration (NULL: keep the row's).
-- Outcomes: claimed, busy (fence taken), stale (an older message), finished (not
-- runnable), missing, exceeded (this claim made it MAX_RECOVERY_ATTEMPTS_EXCEEDED).
CREATE FUNCTION {SCHEMA}.claim_workflow(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint, p_generation integer,
    p_max_recovery_attempts integer
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    lock_key bigint := hashtextextended(p_workflow_uuid, 0);
    claimed record;
BEGIN
    IF NOT pg_try_advisory_lock(lock_key) THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::json;
        RETURN;
    END IF;
    UPDATE {SCHEMA}.workflow_status AS w
    SET status = 'PENDING',
        executor_id = p_executor_id,
        updated_at_epoch_ms = p_now_epoch_ms,
        started_at_epoch_ms = COALESCE(w.started_at_epoch_ms, p_now_epoch_ms),
        recovery_attempts = w.recovery_attempts + (CASE WHEN w.execution_active THEN 1 ELSE 0 END),
        execution_active = true,
        dispatch_parked = false,
        dispatch_generation = GREATEST(w.dispatch_generation, COALESCE(p_generation, 0)),
        max_recovery_attempts = COALESCE(p_max_recovery_attempts, w.max_recovery_attempts)
    WHERE w.workflow_uuid = p_workflow_uuid
      AND w.status IN ('ENQUEUED', 'PENDING')
      AND (p_generation IS NULL OR w.dispatch_generation <= p_generation)
    RETURNING w.name, w.inputs, w.authenticated_user, w.recovery_attempts,
              w.max_recovery_attempts
    INTO claimed;
    IF NOT FOUND THEN
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY
        SELECT CASE WHEN w.workflow_uuid IS NULL THEN 'missing'
                    WHEN w.status IN ('ENQUEUED', 'PENDING') THEN 'stale'
                    ELSE 'finished' END,
               w.name, w.status, NULL::text, NULL::text, NULL::json
        FROM (SELECT 1) AS one
        LEFT JOIN {SCHEMA}.workflow_status AS w ON w.workflow_uuid = p_workflow_uuid;
        RETURN;
    END IF;
    IF claimed.recovery_attempts > claimed.max_recovery_attempts THEN
        UPDATE {SCHEMA}.workflow_status AS w
        SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', execution_active = false,
            updated_at_epoch_ms = p_now_epoch_ms, completed_at_epoch_ms = p_now_epoch_ms
        WHERE w.workflow_uuid = p_workflow_uuid;
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY SELECT 'exceeded'::text, claimed.name, 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'::text,
                            NULL::text, NULL::text, NULL::json;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'claimed'::text, claimed.name, 'PENDING'::text, claimed.inputs,
           claimed.authenticated_user,
           (SELECT json_agg(json_build_array(
                       o.function_id, o.function_name, o.output, o.error, o.attempts,
                       o.attempt_log, o.retry_due_at_epoch_ms, o.started_at_epoch_ms,
                       o.completed_at_epoch_ms) ORDER BY o.function_id)
            FROM {SCHEMA}.operation_outputs AS o
            WHERE o.workflow_uuid = p_workflow_uuid);
END;
$$;

-- The recovery sweep: picks the workflows to publish again and advances their
-- generation, so that any older message still in the broker becomes stale.
--
-- A workflow is due when its delay was parked and has come due; or when an
-- execution was active and its fence is free (the owner died); or when it is ENQUEUED
-- or waiting between attempts and its expected delivery is over p_grace_ms late (the
-- message was lost). Rows and fences held by others are skipped, never waited for.
CREATE FUNCTION {SCHEMA}.recover_workflows(
    p_now_epoch_ms bigint, p_grace_ms bigint, p_limit integer
) RETURNS TABLE (
    workflow_uuid text, name text, queue_name text, generation integer, reason text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    candidate record;
    why text;
BEGIN
    FOR candidate IN
        SELECT w.workflow_uuid, w.dispatch_parked, w.execution_active,
               w.next_dispatch_at_epoch_ms
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.status IN ('ENQUEUED', 'PENDING')
          AND (w.execution_active
               OR (w.dispatch_parked AND w.next_dispatch_at_epoch_ms <= p_now_epoch_ms)
               OR w.next_dispatch_at_epoch_ms <= p_now_epoch_ms - p_grace_ms)
        ORDER BY w.next_dispatch_at_epoch_ms
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        IF NOT pg_try_advisory_lock(hashtextextended(candidate.workflow_uuid, 0)) THEN
            CONTINUE;  -- a live execution owns it
        END IF;
        why := CASE WHEN candidate.execution_active THEN 'owner died'
                    WHEN candidate.dispatch_parked THEN 'parked delay due'
                    ELSE 'delivery overdue' END;
        RETURN QUERY
        UPDATE {SCHEMA}.workflow_status AS w
        SET dispatch_generation = w.dispatch_generation + 1,
            next_dispatch_at_epoch_ms = p_now_epoch_ms,
            dispatch_parked = false,
            updated_at_epoch_ms = p_now_epoch_ms
        WHERE w.workflow_uuid = candidate.workflow_uuid
        RETURNING w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation, why;
        PERFORM pg_advisory_unlock(hashtextextended(candidate.workflow_uuid, 0));
    END LOOP;
END;
$$;
"""

# (version, SQL) in order.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1),)

LATEST_VERSION = MIGRATIONS[-1][0]

# The application database holds one table of ours: the outcome of every
# @DBOS.transaction, written in the same database transaction as the user's writes.
# Idempotent DDL under a transaction-level advisory lock (the application database may
# be the system database, or another one).
APPLICATION_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.transaction_outputs (
    workflow_uuid text NOT NULL,
    function_id integer NOT NULL,
    function_name text NOT NULL,
    output text,
    error text,
    created_at_epoch_ms bigint NOT NULL,
    PRIMARY KEY (workflow_uuid, function_id)
);
"""
