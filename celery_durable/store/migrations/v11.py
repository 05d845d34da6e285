"""Schema version 11: DBOS 3.x queues (registered at run time, partitioned, prioritized).

- ``queues``: per-partition limits (``partition_concurrency``,
  ``partition_worker_concurrency``, ``partition_limiter_*``), DBOS's
  ``polling_interval_sec`` (recorded and reported; Celery delivers, nothing polls),
  ``registered`` (declared with ``DBOS.register_queue``: workers that consume the
  default Celery queue consume it too) and the ``application_version`` that registered
  it (for ``on_conflict="update_if_latest_version"``).
- ``workflow_status.queue_partition_key``: the partition of a partitioned queue.
- ``queue_admission_wait``: priority is honoured on every queue with a limit (as in
  DBOS 3.x, where every queue is a priority queue), and each partition's limits are
  applied to the workflows of that partition.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V11 = f"""
ALTER TABLE {SCHEMA}.queues
    ADD COLUMN partition_concurrency integer,
    ADD COLUMN partition_worker_concurrency integer,
    ADD COLUMN partition_limiter_limit integer,
    ADD COLUMN partition_limiter_period_ms bigint,
    ADD COLUMN polling_interval_sec double precision NOT NULL DEFAULT 1.0,
    ADD COLUMN registered boolean NOT NULL DEFAULT false,
    ADD COLUMN application_version text;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN queue_partition_key text;
CREATE INDEX workflow_status_queue_partition_idx
    ON {SCHEMA}.workflow_status (queue_name, queue_partition_key, status)
    WHERE queue_partition_key IS NOT NULL;

CREATE OR REPLACE FUNCTION {SCHEMA}.queue_admission_wait(
    p_workflow_uuid text, p_executor_id text, p_now_epoch_ms bigint
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    candidate record;
    q record;
    counted integer;
    oldest bigint;
    budget integer;
    partitioned boolean;
BEGIN
    SELECT w.status, w.queue_name, w.priority, w.created_at_epoch_ms,
           w.queue_partition_key INTO candidate
    FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_workflow_uuid;
    IF NOT FOUND OR candidate.status <> 'ENQUEUED' OR candidate.queue_name IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO q FROM {SCHEMA}.queues AS qs WHERE qs.name = candidate.queue_name;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('celery_durable.queue:' || q.name, 0));
    -- Statements of their own after the lock: they see every admission committed before.
    -- The queue's limits, each leaving a budget of workflows it may still admit.
    IF q.concurrency IS NOT NULL THEN
        SELECT count(*) INTO counted FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.status = 'PENDING';
        IF counted >= q.concurrency THEN
            RETURN 500;
        END IF;
        budget := q.concurrency - counted;
    END IF;
    IF q.worker_concurrency IS NOT NULL THEN
        SELECT count(*) INTO counted FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.status = 'PENDING' AND w.executor_id = p_executor_id;
        IF counted >= q.worker_concurrency THEN
            RETURN 500;
        END IF;
        budget := LEAST(budget, q.worker_concurrency - counted);
    END IF;
    IF q.limiter_limit IS NOT NULL THEN
        SELECT count(*), min(w.started_at_epoch_ms) INTO counted, oldest
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name
          AND w.started_at_epoch_ms > p_now_epoch_ms - q.limiter_period_ms;
        IF counted >= q.limiter_limit THEN
            -- Until the oldest start in the window leaves it.
            RETURN GREATEST(oldest + q.limiter_period_ms - p_now_epoch_ms, 1);
        END IF;
        budget := LEAST(budget, q.limiter_limit - counted);
    END IF;
    partitioned := candidate.queue_partition_key IS NOT NULL AND (
        q.partition_concurrency IS NOT NULL OR q.partition_worker_concurrency IS NOT NULL
        OR q.partition_limiter_limit IS NOT NULL);
    -- The partition's limits, on the workflows of the candidate's partition.
    IF partitioned AND q.partition_concurrency IS NOT NULL THEN
        SELECT count(*) INTO counted FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.queue_partition_key = candidate.queue_partition_key
          AND w.status = 'PENDING';
        IF counted >= q.partition_concurrency THEN
            RETURN 500;
        END IF;
        budget := LEAST(budget, q.partition_concurrency - counted);
    END IF;
    IF partitioned AND q.partition_worker_concurrency IS NOT NULL THEN
        SELECT count(*) INTO counted FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.queue_partition_key = candidate.queue_partition_key
          AND w.status = 'PENDING' AND w.executor_id = p_executor_id;
        IF counted >= q.partition_worker_concurrency THEN
            RETURN 500;
        END IF;
        budget := LEAST(budget, q.partition_worker_concurrency - counted);
    END IF;
    IF partitioned AND q.partition_limiter_limit IS NOT NULL THEN
        SELECT count(*), min(w.started_at_epoch_ms) INTO counted, oldest
        FROM {SCHEMA}.workflow_status AS w
        WHERE w.queue_name = q.name AND w.queue_partition_key = candidate.queue_partition_key
          AND w.started_at_epoch_ms > p_now_epoch_ms - q.partition_limiter_period_ms;
        IF counted >= q.partition_limiter_limit THEN
            RETURN GREATEST(oldest + q.partition_limiter_period_ms - p_now_epoch_ms, 1);
        END IF;
        budget := LEAST(budget, q.partition_limiter_limit - counted);
    END IF;
    IF budget IS NULL THEN
        RETURN NULL;
    END IF;
    -- Priority (every queue, as in DBOS 3.x): only the first ``budget`` waiting
    -- workflows, lower priority first, then oldest first, are admitted. A partitioned
    -- queue orders each partition on its own (DBOS dequeues partition by partition).
    SELECT count(*) INTO counted FROM {SCHEMA}.workflow_status AS w
    WHERE w.queue_name = q.name AND w.status = 'ENQUEUED'
      AND (NOT partitioned OR w.queue_partition_key = candidate.queue_partition_key)
      AND (w.priority, w.created_at_epoch_ms)
          < (candidate.priority, candidate.created_at_epoch_ms);
    IF counted >= budget THEN
        RETURN 200;
    END IF;
    RETURN NULL;
END;
$$;
"""
