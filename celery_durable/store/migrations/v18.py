"""Schema version 18: a workflow's DBOS queue apart from its Celery queue.

- ``workflow_status.dbos_queue_name``: the DBOS queue the workflow was enqueued on, what
  ``WorkflowStatus.queue_name`` reports as DBOS does (None: started or called without
  one; ``_dbos_internal_queue``: resumed or forked without a queue, as DBOS). The
  ``queue_name`` column stays the Celery queue its messages are published to (every
  workflow has one); ``list_workflows(queue_name=)`` and ``list_queued_workflows``
  select by the new column. Existing rows on a declared queue keep its name; the others
  (the Celery routing queue of a plain start) have none.
- ``keep_time``: a workflow cancelled at its deadline has its ``completed_at_epoch_ms``,
  as one cancelled by ``cancel_workflow`` (DBOS sets ``completed_at`` on both).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.migrations.v6 import TIMEKEEPING_LOCK_KEY

V18 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN dbos_queue_name text;
UPDATE {SCHEMA}.workflow_status AS w SET dbos_queue_name = w.queue_name
WHERE w.queue_name IN (SELECT name FROM {SCHEMA}.queues);
CREATE INDEX workflow_status_dbos_queue_name_idx
    ON {SCHEMA}.workflow_status (dbos_queue_name, status)
    WHERE dbos_queue_name IS NOT NULL;

-- As version 6's, and a cancelled workflow has completed (DBOS's completed_at).
CREATE OR REPLACE FUNCTION {SCHEMA}.keep_time(p_now_epoch_ms bigint, p_limit integer)
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
        updated_at_epoch_ms = p_now_epoch_ms, completed_at_epoch_ms = p_now_epoch_ms
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
