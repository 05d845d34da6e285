"""Schema version 6: workflow timeouts and delayed starts (DBOS's ``SetWorkflowTimeout``
and ``SetEnqueueOptions(delay_seconds=...)``).

A workflow with a timeout has a deadline: fixed when it is created, or, for one
enqueued on a queue, when it is first admitted (``started_at_epoch_ms +
workflow_timeout_ms``); a child inherits its parent's. A DELAYED workflow waits in
PostgreSQL, never on the broker, until ``next_dispatch_at_epoch_ms``.

``keep_time`` is run by every worker about once a second, one at a time across the
fleet: it cancels the workflows whose deadline has passed, whatever they are doing (a
running one stops at its next step boundary), and makes DELAYED workflows that have
come due ENQUEUED.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

# The fleet-wide timekeeping lock (an arbitrary constant: "cd-clock").
TIMEKEEPING_LOCK_KEY = 0x63642D636C6F636B

_DEADLINE = "COALESCE(workflow_deadline_epoch_ms, started_at_epoch_ms + workflow_timeout_ms)"

V6 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN workflow_timeout_ms bigint;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN workflow_deadline_epoch_ms bigint;
CREATE INDEX workflow_status_deadline_idx
    ON {SCHEMA}.workflow_status (({_DEADLINE}))
    WHERE status IN ('ENQUEUED', 'PENDING', 'DELAYED')
      AND (workflow_deadline_epoch_ms IS NOT NULL OR workflow_timeout_ms IS NOT NULL);
CREATE INDEX workflow_status_delayed_idx
    ON {SCHEMA}.workflow_status (next_dispatch_at_epoch_ms) WHERE status = 'DELAYED';

-- Returns ('cancelled', id, parent, ...) for each workflow whose deadline passed and
-- ('due', id, name, queue, generation) for each DELAYED workflow now ENQUEUED (publish
-- it). Nothing while another worker keeps time.
CREATE FUNCTION {SCHEMA}.keep_time(p_now_epoch_ms bigint, p_limit integer)
RETURNS TABLE (
    kind text, workflow_uuid text, parent_workflow_id text, name text, queue_name text,
    generation integer
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    IF NOT pg_try_advisory_xact_lock({TIMEKEEPING_LOCK_KEY}) THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE {SCHEMA}.workflow_status AS w
    SET status = 'CANCELLED', dispatch_parked = false, wait_key = NULL,
        updated_at_epoch_ms = p_now_epoch_ms
    WHERE w.workflow_uuid IN (
        SELECT o.workflow_uuid FROM {SCHEMA}.workflow_status AS o
        WHERE o.status IN ('ENQUEUED', 'PENDING', 'DELAYED')
          AND (o.workflow_deadline_epoch_ms IS NOT NULL OR o.workflow_timeout_ms IS NOT NULL)
          AND COALESCE(o.workflow_deadline_epoch_ms,
                       o.started_at_epoch_ms + o.workflow_timeout_ms) <= p_now_epoch_ms
        LIMIT p_limit)
      AND w.status IN ('ENQUEUED', 'PENDING', 'DELAYED')
    RETURNING 'cancelled'::text, w.workflow_uuid, w.parent_workflow_id, w.name,
              w.queue_name, w.dispatch_generation;
    RETURN QUERY
    UPDATE {SCHEMA}.workflow_status AS w
    SET status = 'ENQUEUED', dispatch_generation = w.dispatch_generation + 1,
        next_dispatch_at_epoch_ms = p_now_epoch_ms, dispatch_parked = false,
        updated_at_epoch_ms = p_now_epoch_ms
    WHERE w.workflow_uuid IN (
        SELECT d.workflow_uuid FROM {SCHEMA}.workflow_status AS d
        WHERE d.status = 'DELAYED' AND d.next_dispatch_at_epoch_ms <= p_now_epoch_ms
        ORDER BY d.next_dispatch_at_epoch_ms
        LIMIT p_limit)
      AND w.status = 'DELAYED'
    RETURNING 'due'::text, w.workflow_uuid, w.parent_workflow_id, w.name, w.queue_name,
              w.dispatch_generation;
END;
$$;
"""
