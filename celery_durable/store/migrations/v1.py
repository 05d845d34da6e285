"""Schema version 1: workflows, steps, queues, the claim and the recovery sweep.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V1 = f"""
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
    execution_active boolean NOT NULL DEFAULT false,
    -- A child finished while its parent was running: the parent's next wait is zero.
    wake_requested boolean NOT NULL DEFAULT false,
    parent_workflow_id text,
    deduplication_id text,
    -- Lower runs first (as in DBOS); only queues with priority_enabled order by it.
    priority integer NOT NULL DEFAULT 0
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
CREATE INDEX workflow_status_queue_idx
    ON {SCHEMA}.workflow_status (queue_name, status, priority, created_at_epoch_ms);
CREATE INDEX workflow_status_queue_started_idx
    ON {SCHEMA}.workflow_status (queue_name, started_at_epoch_ms);
CREATE INDEX workflow_status_parent_idx
    ON {SCHEMA}.workflow_status (parent_workflow_id) WHERE parent_workflow_id IS NOT NULL;
-- One active workflow per (queue, deduplication id).
CREATE UNIQUE INDEX workflow_status_deduplication_idx
    ON {SCHEMA}.workflow_status (queue_name, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');

-- Queues with limits, as the workers' code declares them (written at worker start).
CREATE TABLE {SCHEMA}.queues (
    name text PRIMARY KEY,
    concurrency integer,
    worker_concurrency integer,
    limiter_limit integer,
    limiter_period_ms bigint,
    priority_enabled boolean NOT NULL DEFAULT false,
    updated_at_epoch_ms bigint NOT NULL
);

-- The workflow names some worker has served (written at worker start), so that a
-- producer without the code can refuse a name no worker knows.
CREATE TABLE {SCHEMA}.registered_workflows (
    name text PRIMARY KEY,
    first_registered_at_epoch_ms bigint NOT NULL,
    last_registered_at_epoch_ms bigint NOT NULL,
    last_executor_id text
);

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
-- runnable), missing, exceeded (this claim made it MAX_RECOVERY_ATTEMPTS_EXCEEDED),
-- throttled (its queue's limits hold it ENQUEUED; try again in wait_ms).
CREATE FUNCTION {SCHEMA}.claim_workflow(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint, p_generation integer,
    p_max_recovery_attempts integer
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json, wait_ms bigint, parent_workflow_id text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    lock_key bigint := hashtextextended(p_workflow_uuid, 0);
    claimed record;
    wait bigint;
BEGIN
    IF NOT pg_try_advisory_lock(lock_key) THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::json, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    wait := {SCHEMA}.queue_admission_wait(p_workflow_uuid, p_executor_id, p_now_epoch_ms);
    IF wait IS NOT NULL THEN
        UPDATE {SCHEMA}.workflow_status AS w
        SET next_dispatch_at_epoch_ms = p_now_epoch_ms + wait
        WHERE w.workflow_uuid = p_workflow_uuid;
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY SELECT 'throttled'::text, NULL::text, 'ENQUEUED'::text, NULL::text,
                            NULL::text, NULL::json, wait, NULL::text;
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
              w.max_recovery_attempts, w.parent_workflow_id
    INTO claimed;
    IF NOT FOUND THEN
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY
        SELECT CASE WHEN w.workflow_uuid IS NULL THEN 'missing'
                    WHEN w.status IN ('ENQUEUED', 'PENDING') THEN 'stale'
                    ELSE 'finished' END,
               w.name, w.status, NULL::text, NULL::text, NULL::json, NULL::bigint, NULL::text
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
                            NULL::text, NULL::text, NULL::json, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'claimed'::text, claimed.name, 'PENDING'::text, claimed.inputs,
           claimed.authenticated_user,
           (SELECT json_agg(json_build_array(
                       o.function_id, o.function_name, o.output, o.error, o.attempts,
                       o.attempt_log, o.retry_due_at_epoch_ms, o.started_at_epoch_ms,
                       o.completed_at_epoch_ms, o.child_workflow_id) ORDER BY o.function_id)
            FROM {SCHEMA}.operation_outputs AS o
            WHERE o.workflow_uuid = p_workflow_uuid),
           NULL::bigint, claimed.parent_workflow_id;
END;
$$;

-- Whether an ENQUEUED workflow's queue admits it now: NULL if so, else how many
-- milliseconds to wait before asking again. Admissions to a queue with limits are
-- serialized by a transaction-level advisory lock on the queue, so the counts below
-- hold across any number of workers. Limits (all optional, from the `queues` table):
-- concurrency (PENDING workflows of the queue), worker_concurrency (PENDING workflows
-- of the queue on this executor), limiter (starts per period), priority (a waiting
-- workflow of lower priority number, or the same and older, goes first).
CREATE FUNCTION {SCHEMA}.queue_admission_wait(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint
) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    candidate record;
    q record;
    running integer;
    running_here integer;
    started integer;
    oldest bigint;
    ahead integer;
BEGIN
    SELECT w.status, w.queue_name, w.priority, w.created_at_epoch_ms INTO candidate
    FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_workflow_uuid;
    IF NOT FOUND OR candidate.status <> 'ENQUEUED' OR candidate.queue_name IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO q FROM {SCHEMA}.queues AS qs WHERE qs.name = candidate.queue_name;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('celery_durable.queue:' || q.name, 0));
    -- A statement of its own after the lock: it sees every admission committed before.
    SELECT count(*) INTO running FROM {SCHEMA}.workflow_status AS w
    WHERE w.queue_name = q.name AND w.status = 'PENDING';
    IF q.concurrency IS NOT NULL AND running >= q.concurrency THEN
        RETURN 500;
    END IF;
    IF q.worker_concurrency IS NOT NULL THEN
        SELECT count(*) INTO running_here FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.status = 'PENDING' AND w.executor_id = p_executor_id;
        IF running_here >= q.worker_concurrency THEN
            RETURN 500;
        END IF;
    END IF;
    IF q.limiter_limit IS NOT NULL THEN
        SELECT count(*), min(w.started_at_epoch_ms) INTO started, oldest
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name
          AND w.started_at_epoch_ms > p_now_epoch_ms - q.limiter_period_ms;
        IF started >= q.limiter_limit THEN
            -- Until the oldest start in the window leaves it.
            RETURN GREATEST(oldest + q.limiter_period_ms - p_now_epoch_ms, 1);
        END IF;
    END IF;
    IF q.priority_enabled AND q.concurrency IS NOT NULL THEN
        SELECT count(*) INTO ahead FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.status = 'ENQUEUED'
          AND (w.priority, w.created_at_epoch_ms)
              < (candidate.priority, candidate.created_at_epoch_ms);
        IF ahead >= q.concurrency - running THEN
            RETURN 200;
        END IF;
    END IF;
    RETURN NULL;
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
