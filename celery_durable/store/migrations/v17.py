"""Schema version 17: a DELAYED workflow holds its deduplication id, as in DBOS 3.4.

``workflow_status_deduplication_idx`` (one active workflow per queue and deduplication
id) counted ENQUEUED and PENDING workflows only, so a second enqueue with the id of a
DELAYED one went through. It now counts DELAYED too. Before it is rebuilt, a DELAYED
workflow whose id another active workflow already holds (possible until now) gives the
id up: the ENQUEUED or PENDING holder keeps it, else the earliest DELAYED one.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V17 = f"""
WITH ranked AS (
    SELECT workflow_uuid, status,
           row_number() OVER (
               PARTITION BY queue_name, deduplication_id
               ORDER BY status = 'DELAYED', created_at_epoch_ms, workflow_uuid) AS rank
    FROM {SCHEMA}.workflow_status
    WHERE deduplication_id IS NOT NULL AND status IN ('DELAYED', 'ENQUEUED', 'PENDING')
)
UPDATE {SCHEMA}.workflow_status AS w
SET deduplication_id = NULL
FROM ranked
WHERE w.workflow_uuid = ranked.workflow_uuid AND ranked.status = 'DELAYED'
  AND ranked.rank > 1;

DROP INDEX {SCHEMA}.workflow_status_deduplication_idx;
CREATE UNIQUE INDEX workflow_status_deduplication_idx
    ON {SCHEMA}.workflow_status (queue_name, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('DELAYED', 'ENQUEUED', 'PENDING');
"""
