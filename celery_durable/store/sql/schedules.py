"""The statements of cron schedules (see schema version 7)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

_COLUMNS = (
    "schedule_id, schedule_name, kind, workflow_name, schedule, status, context, "
    "automatic_backfill, cron_timezone, queue_name, next_fire_epoch_ms, last_fired_at, "
    "created_at_epoch_ms"
)

_INSERT = f"""
    INSERT INTO {SCHEMA}.workflow_schedules AS s (
        schedule_name, schedule_id, kind, workflow_name, schedule, status, context,
        automatic_backfill, cron_timezone, queue_name, next_fire_epoch_ms,
        created_at_epoch_ms, updated_at_epoch_ms)
    VALUES (:schedule_name, :schedule_id, :kind, :workflow_name, :schedule, 'ACTIVE',
            :context, :automatic_backfill, :cron_timezone, :queue_name, :next_fire, :now,
            :now)
"""

# A name already taken inserts nothing (and returns no row).
CREATE_SCHEDULE = text(_INSERT + " ON CONFLICT (schedule_name) DO NOTHING RETURNING schedule_name")

# @DBOS.scheduled, at launch and worker start: the code's cron wins; the next tick
# moves only when the cron changed. A create_schedule row of the same name is kept.
UPSERT_DECORATED_SCHEDULE = text(
    _INSERT
    + """
    ON CONFLICT (schedule_name) DO UPDATE
    SET schedule = excluded.schedule,
        workflow_name = excluded.workflow_name,
        next_fire_epoch_ms = excluded.next_fire_epoch_ms,
        updated_at_epoch_ms = excluded.updated_at_epoch_ms
    WHERE s.kind = 'decorator' AND s.schedule IS DISTINCT FROM excluded.schedule
    """
)

# apply_schedules: create, or replace the definition of a schedule of the same name
# (DBOS's upsert): its id, status (a paused one stays paused) and last tick are kept,
# and its next tick moves only when the cron or its time zone changed.
UPSERT_SCHEDULE = text(
    _INSERT
    + """
    ON CONFLICT (schedule_name) DO UPDATE
    SET kind = excluded.kind,
        workflow_name = excluded.workflow_name,
        schedule = excluded.schedule,
        context = excluded.context,
        automatic_backfill = excluded.automatic_backfill,
        cron_timezone = excluded.cron_timezone,
        queue_name = excluded.queue_name,
        next_fire_epoch_ms = CASE
            WHEN s.schedule IS DISTINCT FROM excluded.schedule
              OR s.cron_timezone IS DISTINCT FROM excluded.cron_timezone
            THEN excluded.next_fire_epoch_ms ELSE s.next_fire_epoch_ms END,
        updated_at_epoch_ms = excluded.updated_at_epoch_ms
    """
)

LIST_SCHEDULES = text(
    f"""
    SELECT {_COLUMNS} FROM {SCHEMA}.workflow_schedules
    WHERE (CAST(:statuses AS text[]) IS NULL OR status = ANY(:statuses))
      AND (CAST(:workflow_names AS text[]) IS NULL OR workflow_name = ANY(:workflow_names))
      AND (CAST(:prefixes AS text[]) IS NULL
           OR EXISTS (SELECT 1 FROM unnest(CAST(:prefixes AS text[])) AS p
                      WHERE starts_with(schedule_name, p)))
    ORDER BY schedule_name
    """
)

GET_SCHEDULE = text(
    f"SELECT {_COLUMNS} FROM {SCHEMA}.workflow_schedules WHERE schedule_name = :schedule_name"
)

PAUSE_SCHEDULE = text(
    f"UPDATE {SCHEMA}.workflow_schedules SET status = 'PAUSED', updated_at_epoch_ms = :now "
    "WHERE schedule_name = :schedule_name RETURNING schedule_name"
)

# The ticks missed while paused are skipped (the next tick is after now), unless the
# schedule backfills automatically: then its next tick stays the first one not fired.
RESUME_SCHEDULE = text(
    f"""
    UPDATE {SCHEMA}.workflow_schedules
    SET status = 'ACTIVE', updated_at_epoch_ms = :now,
        next_fire_epoch_ms = CASE WHEN status = 'PAUSED' AND NOT automatic_backfill
                                  THEN :next_fire ELSE next_fire_epoch_ms END
    WHERE schedule_name = :schedule_name
    RETURNING schedule_name
    """
)

DELETE_SCHEDULE = text(
    f"DELETE FROM {SCHEMA}.workflow_schedules WHERE schedule_name = :schedule_name "
    "RETURNING schedule_name"
)

DUE_SCHEDULES = text(
    "SELECT schedule_name, kind, workflow_name, schedule, context, automatic_backfill, "
    "cron_timezone, queue_name, next_fire_epoch_ms, previous_pass_epoch_ms "
    f"FROM {SCHEMA}.due_schedules(:now, :workflow_names, :decorated, :limit)"
)

ADVANCE_SCHEDULE = text(
    f"""
    UPDATE {SCHEMA}.workflow_schedules
    SET next_fire_epoch_ms = :next_fire,
        last_fired_at = COALESCE(:last_fired_at, last_fired_at),
        updated_at_epoch_ms = :now
    WHERE schedule_name = :schedule_name
    """
)
