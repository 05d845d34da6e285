"""Schema version 3: operations are numbered from 1, as DBOS Transact numbers them.

Versions 1 and 2 numbered a workflow's operations from 0. Every recorded checkpoint
moves up by one, so that a workflow recorded before the upgrade replays with the new
numbering. (The primary key is checked row by row: the shift goes through negative ids.)
Child workflows keep the ids they were started with: replay reads them from their
checkpoints. A child whose row was written just before its parent crashed, before the
parent could checkpoint it, has no checkpoint to be found by: the parent would rebuild
its id from the new numbering and start it again. The missing checkpoint is written
here (pending, naming the old child), for every active parent's child of the form
``{parent}-{n}``.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V3 = f"""
UPDATE {SCHEMA}.operation_outputs SET function_id = -function_id - 1;
UPDATE {SCHEMA}.operation_outputs SET function_id = -function_id;
INSERT INTO {SCHEMA}.operation_outputs (
    workflow_uuid, function_id, function_name, child_workflow_id, attempts,
    started_at_epoch_ms)
SELECT c.parent_workflow_id,
       substring(c.workflow_uuid FROM length(c.parent_workflow_id) + 2)::integer + 1,
       c.name, c.workflow_uuid, 1, c.created_at_epoch_ms
FROM {SCHEMA}.workflow_status AS c
JOIN {SCHEMA}.workflow_status AS p ON p.workflow_uuid = c.parent_workflow_id
WHERE p.status IN ('ENQUEUED', 'PENDING')
  AND left(c.workflow_uuid, length(c.parent_workflow_id) + 1) = c.parent_workflow_id || '-'
  AND substring(c.workflow_uuid FROM length(c.parent_workflow_id) + 2) ~ '^[0-9]{{1,9}}$'
ON CONFLICT (workflow_uuid, function_id) DO NOTHING;
"""
