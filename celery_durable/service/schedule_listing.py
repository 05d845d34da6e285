"""A schedule as ``list_schedules`` and ``get_schedule`` return it (DBOS's keys)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, TypedDict

from celery_durable.integration.process import ProcessServices
from celery_durable.store.schedule_store import ScheduleRow

__all__ = ["WorkflowSchedule", "schedule_dict"]

# DBOS's logger, where DBOS warns of a context it cannot read.
logger = logging.getLogger("dbos")


class WorkflowSchedule(TypedDict):
    """A schedule as ``list_schedules`` returns it (DBOS's keys, plus the next tick)."""

    schedule_id: str
    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    status: str
    context: Any
    last_fired_at: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None
    shard_key: str | None
    next_fire_at: str


def schedule_dict(row: ScheduleRow, process: ProcessServices) -> WorkflowSchedule:
    """A schedule's row as ``list_schedules`` returns it."""
    # A class method's class, known to a process with its code (the row keeps only
    # the workflow's name: the name finds the method, and the method its class).
    spec = process.registry.get(row.workflow_name)
    return WorkflowSchedule(
        schedule_id=row.schedule_id,
        schedule_name=row.schedule_name,
        workflow_name=row.workflow_name,
        workflow_class_name=None if spec is None else spec.membership.class_name,
        schedule=row.schedule,
        status=row.status,
        context=_context(process, row),
        last_fired_at=row.last_fired_at,
        automatic_backfill=row.automatic_backfill,
        cron_timezone=row.cron_timezone,
        queue_name=row.queue_name,
        application_name=None,
        shard_key=None,
        next_fire_at=dt.datetime.fromtimestamp(row.next_fire_epoch_ms / 1000, dt.UTC).isoformat(),
    )


def _context(process: ProcessServices, row: ScheduleRow) -> Any:
    """The schedule's context; as DBOS, one the code can no longer read (its class was
    renamed, ...) comes back as its serialized text with a warning, so that listing
    every schedule does not fail for one."""
    try:
        return process.serializer.loads(row.context)
    except Exception as error:
        logger.warning(
            "Warning: context object could not be deserialized for schedule %s, "
            "returning as string: %s",
            row.schedule_name,
            error,
        )
        return row.context
