"""``DBOSClient``'s cron schedules, as DBOS 3.4's client has them (a part of
``DBOSClient``).

The client names each schedule's workflow (``workflow_name``): it need not have its
code. The schedules are the ones ``DBOS.create_schedule`` writes, in the same table,
and the workers that have the workflow's code fire them. Each method delegates to the
client service's :class:`~celery_durable.service.schedules.ScheduleService`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery_durable.service import WorkflowService
from celery_durable.service.handles import WorkflowHandle
from celery_durable.service.schedule_inputs import ClientScheduleInput
from celery_durable.service.schedules import WorkflowSchedule

__all__ = ["ClientScheduleInput", "ClientSchedules"]


class ClientSchedules:
    """``create_schedule`` and its companions on ``DBOSClient``."""

    _service: WorkflowService

    def create_schedule(
        self,
        *,
        schedule_name: str,
        workflow_name: str,
        schedule: str,
        context: Any = None,
        workflow_class_name: str | None = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        application_name: str | None = None,
        shard_key: str | None = None,
    ) -> None:
        """As ``DBOS.create_schedule``, the workflow by its registered name: each tick
        starts ``workflow_name(scheduled_time, context)`` with the id
        ``sched-{schedule_name}-{scheduled time ISO}``, on the workers that have its code.

        Raises:
            DBOSException: a bad cron or time zone, a name already taken (nothing is
                written); ``workflow_class_name``, ``application_name`` or
                ``shard_key`` (not supported here: see the compatibility page).
        """
        self._service.schedules.create_by_name(
            schedule_name=schedule_name,
            workflow_name=workflow_name,
            schedule=schedule,
            context=context,
            workflow_class_name=workflow_class_name,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
            application_name=application_name,
            shard_key=shard_key,
        )

    async def create_schedule_async(
        self,
        *,
        schedule_name: str,
        workflow_name: str,
        schedule: str,
        context: Any = None,
        workflow_class_name: str | None = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        application_name: str | None = None,
        shard_key: str | None = None,
    ) -> None:
        """``create_schedule`` for async callers."""
        await self._service.schedules.create_by_name_async(
            schedule_name=schedule_name,
            workflow_name=workflow_name,
            schedule=schedule,
            context=context,
            workflow_class_name=workflow_class_name,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
            application_name=application_name,
            shard_key=shard_key,
        )

    def list_schedules(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """As ``DBOS.list_schedules``."""
        return self._service.schedules.find(
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
            application_name=application_name,
        )

    async def list_schedules_async(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """``list_schedules`` for async callers."""
        return await self._service.schedules.find_async(
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
            application_name=application_name,
        )

    def get_schedule(self, name: str) -> WorkflowSchedule | None:
        """As ``DBOS.get_schedule``."""
        return self._service.schedules.get(name)

    async def get_schedule_async(self, name: str) -> WorkflowSchedule | None:
        """``get_schedule`` for async callers."""
        return await self._service.schedules.get_async(name)

    def delete_schedule(self, name: str) -> None:
        """As ``DBOS.delete_schedule``."""
        self._service.schedules.delete(name)

    async def delete_schedule_async(self, name: str) -> None:
        """``delete_schedule`` for async callers."""
        await self._service.schedules.delete_async(name)

    def pause_schedule(self, name: str) -> None:
        """As ``DBOS.pause_schedule``."""
        self._service.schedules.pause(name)

    def resume_schedule(self, name: str) -> None:
        """As ``DBOS.resume_schedule``."""
        self._service.schedules.resume(name)

    def apply_schedules(self, schedules: list[ClientScheduleInput]) -> None:
        """As ``DBOS.apply_schedules``, each workflow by its registered name
        (``workflow_name``): creates each schedule or replaces the definition of the one
        of its name, all in one transaction."""
        self._service.schedules.apply_by_name(schedules)

    async def apply_schedules_async(self, schedules: list[ClientScheduleInput]) -> None:
        """``apply_schedules`` for async callers."""
        await self._service.schedules.apply_by_name_async(schedules)

    def backfill_schedule(
        self, schedule_name: str, start: dt.datetime, end: dt.datetime
    ) -> list[WorkflowHandle[None]]:
        """As ``DBOS.backfill_schedule``: starts every tick in ``(start, end)`` that has
        not run (naive times are UTC); a handle per tick."""
        return self._service.schedules.backfill(schedule_name, start, end)

    def trigger_schedule(self, schedule_name: str) -> WorkflowHandle[None]:
        """As ``DBOS.trigger_schedule``: starts the schedule's workflow now."""
        return self._service.schedules.trigger(schedule_name)
