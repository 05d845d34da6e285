"""Schema version 17: a workflow's DBOS queue apart from its Celery queue.

- ``workflow_status.dbos_queue_name``: the DBOS queue the workflow was enqueued on, what
  ``WorkflowStatus.queue_name`` reports as DBOS does (None: started or called without
  one; ``_dbos_internal_queue``: resumed or forked without a queue, as DBOS). The
  ``queue_name`` column stays the Celery queue its messages are published to (every
  workflow has one); ``list_workflows(queue_name=)`` and ``list_queued_workflows``
  select by the new column. Existing rows on a declared queue keep its name; the others
  (the Celery routing queue of a plain start) have none.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V17 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN dbos_queue_name text;
UPDATE {SCHEMA}.workflow_status AS w SET dbos_queue_name = w.queue_name
WHERE w.queue_name IN (SELECT name FROM {SCHEMA}.queues);
CREATE INDEX workflow_status_dbos_queue_name_idx
    ON {SCHEMA}.workflow_status (dbos_queue_name, status)
    WHERE dbos_queue_name IS NOT NULL;
"""
