"""Schema version 4: one recovery sweep at a time, and a dead owner is counted once.

Every worker now runs the sweep periodically. ``recover_workflows`` returns nothing
while another sweep holds the fleet-wide sweep lock, so that two workers never publish
the same workflow for one sweep. A workflow whose owner died is counted as a recovery
attempt by the sweep that publishes it again, and stops being "owned": a later sweep
does not publish it again unless its new delivery is itself overdue. (A redelivered
message that claims it before any sweep does still counts it, in the claim: either
way, once.) The batch limit counts only workflows published: lost and parked
deliveries are looked at first, and live executions are passed over without locking
their rows, however many there are.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

# The fleet-wide sweep lock (an arbitrary constant: "cd-sweep").
SWEEP_LOCK_KEY = 0x63642D7377656570

V4 = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.recover_workflows(
    p_now_epoch_ms bigint, p_grace_ms bigint, p_limit integer
) RETURNS TABLE (
    workflow_uuid text, name text, queue_name text, generation integer, reason text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    candidate record;
    why text;
    published integer := 0;
BEGIN
    -- Held until this statement's transaction ends: one sweep at a time, fleet-wide.
    IF NOT pg_try_advisory_xact_lock({SWEEP_LOCK_KEY}) THEN
        RETURN;
    END IF;
    -- Lost and parked deliveries first, then executions that may have died. Live
    -- executions are skipped without counting against p_limit, and no row is locked
    -- until its fence is ours (a running workflow's completion never waits on a sweep).
    FOR candidate IN
        SELECT w.workflow_uuid, w.dispatch_parked, w.execution_active
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.status IN ('ENQUEUED', 'PENDING')
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
