"""Schema version 7: cron schedules (DBOS's ``create_schedule`` and ``@DBOS.scheduled``).

A schedule is a row of ``workflow_schedules``. Its next tick is computed in Python
(croniter) and stored as ``next_fire_epoch_ms``; the workers' timekeeping pass (about
once a second, one pass at a time across the fleet) fires every ACTIVE schedule whose
next tick has passed. A tick is a workflow whose id is ``sched-{name}-{tick ISO}``,
inserted with ``ON CONFLICT DO NOTHING``: each tick runs once, whoever fires it, however
often. ``schedule_clock`` holds when the last pass ran, so a pass can tell ticks that
came due while the fleet was running from ticks missed while nothing ran.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

# The fleet-wide lock of the schedule pass (an arbitrary constant: "cd-sched").
SCHEDULES_LOCK_KEY = 0x63642D7363686564

V7 = f"""
CREATE TABLE {SCHEMA}.workflow_schedules (
    schedule_name text PRIMARY KEY,
    schedule_id text NOT NULL UNIQUE,
    -- 'schedule': DBOS.create_schedule, called with (scheduled_time, context);
    -- 'decorator': @DBOS.scheduled, called with (scheduled_time, actual_time).
    kind text NOT NULL CHECK (kind IN ('schedule', 'decorator')),
    workflow_name text NOT NULL,
    schedule text NOT NULL,
    status text NOT NULL CHECK (status IN ('ACTIVE', 'PAUSED')),
    context text NOT NULL,
    automatic_backfill boolean NOT NULL,
    cron_timezone text,
    queue_name text,
    next_fire_epoch_ms bigint NOT NULL,
    last_fired_at text,
    created_at_epoch_ms bigint NOT NULL,
    updated_at_epoch_ms bigint NOT NULL
);
CREATE INDEX workflow_schedules_due_idx
    ON {SCHEMA}.workflow_schedules (next_fire_epoch_ms) WHERE status = 'ACTIVE';

CREATE TABLE {SCHEMA}.schedule_clock (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    passed_at_epoch_ms bigint
);
INSERT INTO {SCHEMA}.schedule_clock (only_row, passed_at_epoch_ms) VALUES (true, NULL);

-- One schedule pass, first half: nothing while another pass holds the lock (it is held
-- until the caller's transaction ends); otherwise records this pass's time and returns
-- the due schedules (locked) with the previous pass's time.
CREATE FUNCTION {SCHEMA}.due_schedules(
    p_now_epoch_ms bigint, p_workflow_names text[], p_decorated text[], p_limit integer)
RETURNS TABLE (
    schedule_name text, kind text, workflow_name text, schedule text, context text,
    automatic_backfill boolean, cron_timezone text, queue_name text,
    next_fire_epoch_ms bigint, previous_pass_epoch_ms bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_previous bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock({SCHEDULES_LOCK_KEY}) THEN
        RETURN;
    END IF;
    SELECT c.passed_at_epoch_ms INTO v_previous FROM {SCHEMA}.schedule_clock AS c;
    UPDATE {SCHEMA}.schedule_clock SET passed_at_epoch_ms = p_now_epoch_ms;
    RETURN QUERY
    SELECT s.schedule_name, s.kind, s.workflow_name, s.schedule, s.context,
           s.automatic_backfill, s.cron_timezone, s.queue_name, s.next_fire_epoch_ms,
           v_previous
    FROM {SCHEMA}.workflow_schedules AS s
    WHERE s.status = 'ACTIVE' AND s.next_fire_epoch_ms <= p_now_epoch_ms
      -- Only what this process can start: a decorated schedule lives with the code
      -- that declares it.
      AND s.workflow_name = ANY(p_workflow_names)
      AND (s.kind = 'schedule' OR s.schedule_name = ANY(p_decorated))
    ORDER BY s.next_fire_epoch_ms
    LIMIT p_limit
    FOR UPDATE OF s;
END;
$$;
"""
