"""Schema version 2: a direct call writes its workflow's row in the claim's round trip.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

# A direct call (the workflow runs in the calling process): its row is written and
# claimed in one round trip. Returns claim_workflow's columns, plus whether the row was
# inserted and, for a workflow that had already finished, its recorded output and
# error (so that calling it again costs this one statement). Outcome 'conflict': the id belongs
# to a workflow of another name (nothing claimed).
V2 = f"""
CREATE FUNCTION {SCHEMA}.call_workflow(
    p_workflow_uuid text, p_name text, p_queue_name text, p_inputs text,
    p_authenticated_user text, p_max_recovery_attempts integer, p_parent_workflow_id text,
    p_deduplication_id text, p_priority integer, p_executor_id text, p_now_epoch_ms bigint
) RETURNS TABLE (
    outcome text, name text, status text, inputs text, authenticated_user text,
    checkpoints json, wait_ms bigint, parent_workflow_id text, inserted boolean,
    output text, error text
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
        deduplication_id, priority)
    VALUES (p_workflow_uuid, p_name, 'PENDING', p_queue_name, p_inputs, p_authenticated_user,
            p_max_recovery_attempts, p_now_epoch_ms, p_now_epoch_ms, p_now_epoch_ms, false,
            p_parent_workflow_id, p_deduplication_id, p_priority)
    ON CONFLICT (workflow_uuid) DO NOTHING;
    was_inserted := FOUND;
    IF NOT was_inserted THEN
        SELECT w.name, w.status, w.output, w.error INTO existing
        FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_workflow_uuid;
        IF existing.name <> p_name THEN
            RETURN QUERY SELECT 'conflict'::text, existing.name, existing.status, NULL::text,
                                NULL::text, NULL::json, NULL::bigint, NULL::text, false,
                                NULL::text, NULL::text;
            RETURN;
        END IF;
        IF existing.status NOT IN ('ENQUEUED', 'PENDING') THEN
            RETURN QUERY SELECT 'finished'::text, existing.name, existing.status, NULL::text,
                                NULL::text, NULL::json, NULL::bigint, NULL::text, false,
                                existing.output, existing.error;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    SELECT c.outcome, c.name, c.status, c.inputs, c.authenticated_user, c.checkpoints,
           c.wait_ms, c.parent_workflow_id, was_inserted, NULL::text, NULL::text
    FROM {SCHEMA}.claim_workflow(
        p_workflow_uuid, p_executor_id, p_now_epoch_ms, NULL, p_max_recovery_attempts) AS c;
END;
$$;
"""
