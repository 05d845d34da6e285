"""Schema version 9: application versions (safe deploys).

``workflow_status.application_version`` is the version of the code a workflow runs
with: given when it is created (``application_version`` configured, or
``SetEnqueueOptions(app_version=...)`` / the client's ``app_version``), otherwise
stamped by the first claim, with the claiming worker's version. From then on only a
worker of that version claims it. A delivery that reaches a worker of another version
claims nothing: when a worker of the workflow's version is alive, the message goes
back to the queue (outcome ``version`` with ``wait_ms``); when none is, the workflow
is parked for one (``dispatch_parked``), and the recovery sweep of a worker of its
version publishes it.

Workers say which version they run in ``worker_versions``, written by each sweep
(every ``recovery_interval_seconds``) and deleted at warm shutdown. The recovery sweep
publishes only workflows of its own version, or of none.

The functions of versions 1, 2 and 4 stay, with their signatures: workers of the
release before this one keep working during a rolling deploy (they know no versions).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.migrations.v4 import SWEEP_LOCK_KEY

# A version's workers are gone when none has swept for this long (a day): their rows
# are deleted.
_FORGET_WORKERS_MS = 86_400_000

# What the claim returns when it claims nothing (the workflow's recorded version last).
_NOTHING = "NULL::text, NULL::text, NULL::json, NULL::bigint, NULL::text, NULL::text"

V9 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN application_version text;
-- The execution that holds the workflow (a random number per claim): statements that do
-- not run on the fence's own connection are conditional on it.
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN owner_token bigint;

CREATE TABLE {SCHEMA}.worker_versions (
    executor_id text PRIMARY KEY,
    application_version text NOT NULL,
    last_seen_epoch_ms bigint NOT NULL
);
CREATE INDEX worker_versions_version_idx
    ON {SCHEMA}.worker_versions (application_version, last_seen_epoch_ms);

-- claim_workflow (version 1) with the application version: p_app_version is the
-- claiming worker's. A workflow of another version is not claimed: outcome 'version'
-- with its version, and wait_ms when a worker of that version has swept within
-- p_live_ms (deliver again soon), else NULL (parked for one: its sweep publishes it).
-- A workflow of no version is stamped with the claimer's. p_owner_token names the
-- execution that claims it (owner_token).
CREATE FUNCTION {SCHEMA}.claim_workflow(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint, p_generation integer,
    p_max_recovery_attempts integer, p_app_version text, p_live_ms bigint,
    p_owner_token bigint
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json, wait_ms bigint, parent_workflow_id text, app_version text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    lock_key bigint := hashtextextended(p_workflow_uuid, 0);
    claimed record;
    found_row record;
    wait bigint;
BEGIN
    IF NOT pg_try_advisory_lock(lock_key) THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text, NULL::text, {_NOTHING};
        RETURN;
    END IF;
    wait := {SCHEMA}.queue_admission_wait(p_workflow_uuid, p_executor_id, p_now_epoch_ms);
    IF wait IS NOT NULL THEN
        UPDATE {SCHEMA}.workflow_status AS w
        SET next_dispatch_at_epoch_ms = p_now_epoch_ms + wait
        WHERE w.workflow_uuid = p_workflow_uuid;
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY SELECT 'throttled'::text, NULL::text, 'ENQUEUED'::text, NULL::text,
                            NULL::text, NULL::json, wait, NULL::text, NULL::text;
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
        max_recovery_attempts = COALESCE(p_max_recovery_attempts, w.max_recovery_attempts),
        application_version = COALESCE(w.application_version, p_app_version),
        owner_token = p_owner_token
    WHERE w.workflow_uuid = p_workflow_uuid
      AND w.status IN ('ENQUEUED', 'PENDING')
      AND (p_generation IS NULL OR w.dispatch_generation <= p_generation)
      AND (w.application_version IS NULL OR p_app_version IS NULL
           OR w.application_version = p_app_version)
    RETURNING w.name, w.inputs, w.authenticated_user, w.recovery_attempts,
              w.max_recovery_attempts, w.parent_workflow_id
    INTO claimed;
    IF NOT FOUND THEN
        SELECT w.name, w.status, w.application_version, w.execution_active,
               w.status IN ('ENQUEUED', 'PENDING')
                   AND (p_generation IS NULL OR w.dispatch_generation <= p_generation)
                   AS runnable
        INTO found_row
        FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_workflow_uuid;
        IF FOUND AND found_row.runnable THEN
            -- Runnable, but of another version: for a worker of that version.
            wait := NULL;
            IF EXISTS (SELECT 1 FROM {SCHEMA}.worker_versions AS v
                       WHERE v.application_version = found_row.application_version
                         AND v.last_seen_epoch_ms > p_now_epoch_ms - p_live_ms) THEN
                wait := 1000;
            ELSIF NOT found_row.execution_active THEN
                UPDATE {SCHEMA}.workflow_status AS w
                SET dispatch_parked = true, next_dispatch_at_epoch_ms = p_now_epoch_ms
                WHERE w.workflow_uuid = p_workflow_uuid;
            END IF;
            PERFORM pg_advisory_unlock(lock_key);
            RETURN QUERY SELECT 'version'::text, found_row.name, found_row.status, NULL::text,
                                NULL::text, NULL::json, wait, NULL::text,
                                found_row.application_version;
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY
        SELECT CASE WHEN found_row.name IS NULL THEN 'missing'
                    WHEN found_row.status IN ('ENQUEUED', 'PENDING') THEN 'stale'
                    ELSE 'finished' END,
               found_row.name, found_row.status, {_NOTHING};
        RETURN;
    END IF;
    IF claimed.recovery_attempts > claimed.max_recovery_attempts THEN
        UPDATE {SCHEMA}.workflow_status AS w
        SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', execution_active = false,
            updated_at_epoch_ms = p_now_epoch_ms, completed_at_epoch_ms = p_now_epoch_ms
        WHERE w.workflow_uuid = p_workflow_uuid;
        PERFORM pg_advisory_unlock(lock_key);
        RETURN QUERY SELECT 'exceeded'::text, claimed.name,
                            'MAX_RECOVERY_ATTEMPTS_EXCEEDED'::text, {_NOTHING};
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
           NULL::bigint, claimed.parent_workflow_id, NULL::text;
END;
$$;

-- call_workflow (version 2) with the application version: the row records
-- p_recorded_version (NULL: the claim stamps the caller's, p_app_version).
CREATE FUNCTION {SCHEMA}.call_workflow(
    p_workflow_uuid text, p_name text, p_queue_name text, p_inputs text,
    p_authenticated_user text, p_max_recovery_attempts integer, p_parent_workflow_id text,
    p_deduplication_id text, p_priority integer, p_executor_id text, p_now_epoch_ms bigint,
    p_recorded_version text, p_app_version text, p_live_ms bigint, p_owner_token bigint
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json, wait_ms bigint, parent_workflow_id text, app_version text,
    inserted boolean, output text, error text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    existing record;
    was_inserted boolean;
BEGIN
    INSERT INTO {SCHEMA}.workflow_status AS w (
        workflow_uuid, name, status, queue_name, inputs, authenticated_user,
        max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms,
        next_dispatch_at_epoch_ms, execution_active, parent_workflow_id,
        deduplication_id, priority, application_version)
    VALUES (p_workflow_uuid, p_name, 'PENDING', p_queue_name, p_inputs, p_authenticated_user,
            p_max_recovery_attempts, p_now_epoch_ms, p_now_epoch_ms, p_now_epoch_ms, false,
            p_parent_workflow_id, p_deduplication_id, p_priority, p_recorded_version)
    ON CONFLICT (workflow_uuid) DO NOTHING;
    was_inserted := FOUND;
    IF NOT was_inserted THEN
        SELECT w.name, w.status, w.output, w.error INTO existing
        FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_workflow_uuid;
        IF existing.name <> p_name THEN
            RETURN QUERY SELECT 'conflict'::text, existing.name, existing.status, {_NOTHING},
                                false, NULL::text, NULL::text;
            RETURN;
        END IF;
        IF existing.status NOT IN ('ENQUEUED', 'PENDING') THEN
            RETURN QUERY SELECT 'finished'::text, existing.name, existing.status, {_NOTHING},
                                false, existing.output, existing.error;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    SELECT c.outcome, c.name, c.status, c.inputs, c.authenticated_user, c.checkpoints,
           c.wait_ms, c.parent_workflow_id, c.app_version, was_inserted, NULL::text, NULL::text
    FROM {SCHEMA}.claim_workflow(
        p_workflow_uuid, p_executor_id, p_now_epoch_ms, NULL, p_max_recovery_attempts,
        p_app_version, p_live_ms, p_owner_token) AS c;
END;
$$;

-- recover_workflows (version 4) for a worker of one version: it first says it is alive
-- (worker_versions), then publishes only workflows of its version or of none. Without
-- a version (an operator's sweep: beat, the CLI), it publishes workflows of any.
CREATE FUNCTION {SCHEMA}.recover_workflows(
    p_now_epoch_ms bigint, p_grace_ms bigint, p_limit integer, p_app_version text,
    p_executor_id text
) RETURNS TABLE (
    workflow_uuid text, name text, queue_name text, generation integer, reason text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    candidate record;
    why text;
    published integer := 0;
BEGIN
    IF p_app_version IS NOT NULL AND p_executor_id IS NOT NULL THEN
        INSERT INTO {SCHEMA}.worker_versions AS v
            (executor_id, application_version, last_seen_epoch_ms)
        VALUES (p_executor_id, p_app_version, p_now_epoch_ms)
        ON CONFLICT (executor_id) DO UPDATE
        SET application_version = EXCLUDED.application_version,
            last_seen_epoch_ms = EXCLUDED.last_seen_epoch_ms;
    END IF;
    IF NOT pg_try_advisory_xact_lock({SWEEP_LOCK_KEY}) THEN
        RETURN;
    END IF;
    DELETE FROM {SCHEMA}.worker_versions AS v
    WHERE v.last_seen_epoch_ms < p_now_epoch_ms - {_FORGET_WORKERS_MS};
    FOR candidate IN
        SELECT w.workflow_uuid, w.dispatch_parked, w.execution_active
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.status IN ('ENQUEUED', 'PENDING')
          AND (p_app_version IS NULL OR w.application_version IS NULL
               OR w.application_version = p_app_version)
          AND (w.execution_active
               OR (w.dispatch_parked AND w.next_dispatch_at_epoch_ms <= p_now_epoch_ms)
               OR w.next_dispatch_at_epoch_ms <= p_now_epoch_ms - p_grace_ms)
        ORDER BY w.execution_active, w.next_dispatch_at_epoch_ms
    LOOP
        EXIT WHEN published >= p_limit;
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
            recovery_attempts = w.recovery_attempts
                + (CASE WHEN w.execution_active THEN 1 ELSE 0 END),
            execution_active = false,
            updated_at_epoch_ms = p_now_epoch_ms
        WHERE w.workflow_uuid = candidate.workflow_uuid
          AND w.status IN ('ENQUEUED', 'PENDING')
          AND (p_app_version IS NULL OR w.application_version IS NULL
               OR w.application_version = p_app_version)
          AND (w.execution_active
               OR (w.dispatch_parked AND w.next_dispatch_at_epoch_ms <= p_now_epoch_ms)
               OR w.next_dispatch_at_epoch_ms <= p_now_epoch_ms - p_grace_ms)
        RETURNING w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation, why;
        IF FOUND THEN
            published := published + 1;
        END IF;
        PERFORM pg_advisory_unlock(hashtextextended(candidate.workflow_uuid, 0));
    END LOOP;
END;
$$;
"""
