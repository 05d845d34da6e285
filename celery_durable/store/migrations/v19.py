"""Schema version 19: a task's callback claims its parked workflow with one update of
the workflow's row, on its page.

``claim_after_task`` (v16) woke the workflow (one update: a new generation, its
dispatch due now) and then claimed it (``claim_workflow``: a second update). Both
changed ``next_dispatch_at_epoch_ms``, an indexed column, so neither update could stay
on the row's page (a heap-only tuple): each wrote a new entry into every index of
``workflow_status``, three rows' worth of index writes per ``DBOS.run_task`` call with
the park that follows. Now, when the workflow is PENDING, no execution runs it, it is of
this worker's version (or none), its recovery attempts allow a claim and its lock is
free, the wake-up and the claim are one update that leaves the dispatch time alone (an
active execution's is not read: the sweep finds a dead owner by its lock). Otherwise
(busy, another version, another execution running it, no longer PENDING) it does what
v16 did. The rows it returns are v16's.

``workflow_status`` also leaves a fifth of each page free (fillfactor 80), so that
such updates find room on the row's own page (pages written from now on).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V19 = f"""
ALTER TABLE {SCHEMA}.workflow_status SET (fillfactor = 80);

CREATE OR REPLACE FUNCTION {SCHEMA}.claim_after_task(
    p_workflow_uuid text, p_function_id integer, p_task_id text, p_output text,
    p_error text, p_executor_id text, p_now_epoch_ms bigint,
    p_max_recovery_attempts integer, p_app_version text, p_live_ms bigint,
    p_owner_token bigint)
RETURNS TABLE(outcome text, name text, status text, inputs text, authenticated_user text,
              checkpoints json, wait_ms bigint, parent_workflow_id text, app_version text,
              woken_name text, woken_queue text, woken_generation integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lock_key bigint := hashtextextended(p_workflow_uuid, 0);
    woken record;
BEGIN
    -- Committed durably even on a connection with asynchronous commit (DBOSConfig's
    -- synchronous_checkpoints=False): the callback's message is gone once it returns.
    PERFORM set_config('synchronous_commit', 'on', true);
    -- The workflow's row first, as a checkpoint of its execution locks it.
    PERFORM 1 FROM {SCHEMA}.workflow_status AS w
    WHERE w.workflow_uuid = p_workflow_uuid FOR UPDATE;
    UPDATE {SCHEMA}.operation_outputs AS o
    SET output = p_output, error = p_error,
        completed_at_epoch_ms = CASE WHEN p_error IS NULL THEN p_now_epoch_ms END,
        retry_due_at_epoch_ms = CASE WHEN p_error IS NULL THEN NULL
                                     ELSE o.retry_due_at_epoch_ms END
    WHERE o.workflow_uuid = p_workflow_uuid AND o.function_id = p_function_id
      AND o.child_workflow_id = p_task_id
      AND o.completed_at_epoch_ms IS NULL AND o.error IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unrecorded'::text, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::json, NULL::bigint, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::integer;
        RETURN;
    END IF;
    -- The common case: woken and claimed in one update (see the migration's docstring).
    IF pg_try_advisory_lock(lock_key) THEN
        UPDATE {SCHEMA}.workflow_status AS w
        SET dispatch_generation = w.dispatch_generation + 1,
            execution_active = true,
            dispatch_parked = false,
            wake_requested = false,
            executor_id = p_executor_id,
            updated_at_epoch_ms = p_now_epoch_ms,
            max_recovery_attempts = COALESCE(p_max_recovery_attempts,
                                             w.max_recovery_attempts),
            application_version = COALESCE(w.application_version, p_app_version),
            owner_token = p_owner_token
        WHERE w.workflow_uuid = p_workflow_uuid AND w.status = 'PENDING'
          AND NOT w.execution_active
          AND (w.application_version IS NULL OR p_app_version IS NULL
               OR w.application_version = p_app_version)
          AND w.recovery_attempts <= COALESCE(p_max_recovery_attempts,
                                              w.max_recovery_attempts)
        RETURNING w.name, w.queue_name, w.dispatch_generation, w.inputs,
                  w.authenticated_user, w.parent_workflow_id
        INTO woken;
        IF FOUND THEN
            RETURN QUERY
            SELECT 'claimed'::text, woken.name, 'PENDING'::text, woken.inputs,
                   woken.authenticated_user,
                   (SELECT json_agg(json_build_array(
                               o.function_id, o.function_name, o.output, o.error,
                               o.attempts, o.attempt_log, o.retry_due_at_epoch_ms,
                               o.started_at_epoch_ms, o.completed_at_epoch_ms,
                               o.child_workflow_id) ORDER BY o.function_id)
                    FROM {SCHEMA}.operation_outputs AS o
                    WHERE o.workflow_uuid = p_workflow_uuid),
                   NULL::bigint, woken.parent_workflow_id, NULL::text,
                   woken.name, woken.queue_name, woken.dispatch_generation;
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(lock_key);
    END IF;
    UPDATE {SCHEMA}.workflow_status AS w
    SET wake_requested = w.execution_active,
        dispatch_generation = w.dispatch_generation
            + (CASE WHEN w.execution_active THEN 0 ELSE 1 END),
        next_dispatch_at_epoch_ms = p_now_epoch_ms,
        dispatch_parked = false
    WHERE w.workflow_uuid = p_workflow_uuid AND w.status = 'PENDING'
    RETURNING w.name, w.queue_name, w.dispatch_generation, w.execution_active
    INTO woken;
    IF NOT FOUND OR woken.execution_active THEN
        RETURN QUERY SELECT 'recorded'::text, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::json, NULL::bigint, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::integer;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT c.outcome, c.name, c.status, c.inputs, c.authenticated_user, c.checkpoints,
           c.wait_ms, c.parent_workflow_id, c.app_version,
           woken.name, woken.queue_name, woken.dispatch_generation
    FROM {SCHEMA}.claim_workflow(
        p_workflow_uuid, p_executor_id, p_now_epoch_ms, woken.dispatch_generation,
        p_max_recovery_attempts, p_app_version, p_live_ms, p_owner_token) AS c;
END;
$$;
"""
