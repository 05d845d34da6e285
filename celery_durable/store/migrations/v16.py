"""Schema version 16: a Celery task's outcome recorded and its workflow claimed in one
round trip (``DBOS.run_task``).

- ``claim_after_task``: what ``RECORD_TASK_OUTCOME`` does (the attempt's outcome,
  recorded once; the workflow woken), then, if that woke a workflow no execution runs,
  ``claim_workflow`` with the generation the wake-up gave it. The process that records
  the outcome runs the workflow on (integration/continuation.py): one statement where a
  record and a claim were two. Each row says what was done:

  - ``unrecorded``: nothing (a duplicate callback, a stale attempt's);
  - ``recorded``: recorded; the workflow runs elsewhere (asked to look again) or is
    no longer PENDING;
  - otherwise the claim's outcome, with the woken workflow's name, queue and generation
    (``woken_*``) for the message that runs it when this claim did not (busy,
    throttled, ...).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V16 = f"""
CREATE FUNCTION {SCHEMA}.claim_after_task(
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
