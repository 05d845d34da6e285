"""The ``DBOS`` facade's cron schedules (a part of ``DBOS``).

Names and signatures are DBOS Transact 3.x's (``create_schedule`` and its companions)
and 2.x's ``@DBOS.scheduled`` decorator. Schedules live in PostgreSQL and are fired by
the workers' own timekeeping: no beat is needed (see
:mod:`celery_durable.integration.schedule_keeper`). Each method delegates to the configured
service's :class:`~celery_durable.service.schedules.ScheduleService`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.service.handles import WorkflowHandle
from celery_durable.service.management import refuse_shard_key
from celery_durable.service.schedule_inputs import ScheduleInput
from celery_durable.service.schedules import WorkflowSchedule, declare_scheduled

__all__ = ["ScheduleInput", "WorkflowSchedule", "WorkflowSchedules"]

F = TypeVar("F", bound=Callable[..., Any])


class WorkflowSchedules(ConfiguredFacade):
    """``create_schedule`` and its companions, and ``@DBOS.scheduled``, on ``DBOS``."""

    @classmethod
    def scheduled(cls, cron: str) -> Callable[[F], F]:
        """DBOS 2.x's decorator: runs the workflow on ``cron`` (5 fields, or 6 with the
        seconds first), called as ``workflow(scheduled_time, actual_time)``.

        Put it above ``@DBOS.workflow()``. The schedule is named after the workflow;
        each tick's id is ``sched-{workflow name}-{scheduled time ISO}``. It is written
        to PostgreSQL by ``DBOS.launch()`` and by every worker that starts, and fires
        only from processes whose code declares it.

        Raises:
            DBOSException: a bad cron, or the function is not a workflow.
        """
        return declare_scheduled(cls._scheduled_workflows, cls._current_service, cron)

    @classmethod
    def create_schedule(
        cls,
        *,
        schedule_name: str,
        workflow_fn: Callable[..., Any],
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> None:
        """Creates a cron schedule that starts ``workflow_fn(scheduled_time, context)``
        at each tick, with the id ``sched-{schedule_name}-{scheduled time ISO}``.

        Args:
            schedule: A cron expression: 5 fields, or 6 with the seconds first.
            context: Passed to every run (serialized once, now).
            automatic_backfill: Ticks missed while no worker ran are started when one
                runs again (by default they are skipped).
            cron_timezone: The IANA zone the cron is read in (default UTC).
            queue_name: A declared ``Queue`` to start the runs on.
            shard_key: Only None (no sharding here).

        Raises:
            DBOSException: a bad cron or time zone, an unregistered workflow, an
                undeclared queue, or a name already taken (nothing is written).
        """
        refuse_shard_key(shard_key)
        cls._service().schedules.create(
            schedule_name=schedule_name,
            workflow_fn=workflow_fn,
            schedule=schedule,
            context=context,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
        )

    @classmethod
    async def create_schedule_async(
        cls,
        *,
        schedule_name: str,
        workflow_fn: Callable[..., Any],
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> None:
        """``create_schedule`` for async callers."""
        refuse_shard_key(shard_key)
        await cls._service().schedules.create_async(
            schedule_name=schedule_name,
            workflow_fn=workflow_fn,
            schedule=schedule,
            context=context,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
        )

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """Every schedule, by name, optionally filtered (each filter: one or a list).
        ``application_name`` selects every schedule: none has an owning application
        here (one system database serves one Celery app)."""
        return cls._service().schedules.find(
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
            application_name=application_name,
        )

    @classmethod
    async def list_schedules_async(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """``list_schedules`` for async callers."""
        return await cls._service().schedules.find_async(
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
            application_name=application_name,
        )

    @classmethod
    def get_schedule(cls, name: str) -> WorkflowSchedule | None:
        """The schedule named ``name``, or None."""
        return cls._service().schedules.get(name)

    @classmethod
    async def get_schedule_async(cls, name: str) -> WorkflowSchedule | None:
        """``get_schedule`` for async callers."""
        return await cls._service().schedules.get_async(name)

    @classmethod
    def delete_schedule(cls, name: str) -> None:
        """Deletes a schedule (nothing if there is none). Runs already started go on."""
        cls._service().schedules.delete(name)

    @classmethod
    async def delete_schedule_async(cls, name: str) -> None:
        """``delete_schedule`` for async callers."""
        await cls._service().schedules.delete_async(name)

    @classmethod
    def pause_schedule(cls, name: str) -> None:
        """Stops a schedule firing until ``resume_schedule`` (nothing if there is none)."""
        cls._service().schedules.pause(name)

    @classmethod
    def resume_schedule(cls, name: str) -> None:
        """Fires a paused schedule again from its next tick; the ticks missed while it
        was paused run only with ``automatic_backfill`` (nothing if there is none)."""
        cls._service().schedules.resume(name)

    @classmethod
    def apply_schedules(cls, schedules: list[ScheduleInput]) -> None:
        """Creates each schedule, or replaces the definition of the one of its name
        (its status — a paused one stays paused — and last tick are kept; a changed
        cron moves its next tick), all in one transaction.

        Args:
            schedules: Each with ``schedule_name``, ``workflow_fn`` and ``schedule``,
                and optionally ``context``, ``automatic_backfill``, ``cron_timezone``,
                ``queue_name`` (as ``create_schedule``'s).

        Raises:
            DBOSException: a missing field, a bad cron or time zone, an unregistered
                workflow, an undeclared queue, a ``shard_key``, or called from workflow
                code (nothing is written).
        """
        cls._service().schedules.apply(schedules)

    @classmethod
    async def apply_schedules_async(cls, schedules: list[ScheduleInput]) -> None:
        """``apply_schedules`` for async callers."""
        await cls._service().schedules.apply_async(schedules)

    @classmethod
    def trigger_schedule(cls, schedule_name: str) -> WorkflowHandle[None]:
        """Starts the schedule's workflow now, with the id
        ``sched-{name}-trigger-{now ISO}``.

        Raises:
            DBOSException: no such schedule, or called from workflow code.
        """
        return cls._service().schedules.trigger(schedule_name)

    @classmethod
    def backfill_schedule(
        cls, schedule_name: str, start: dt.datetime, end: dt.datetime
    ) -> list[WorkflowHandle[None]]:
        """Starts every tick of the schedule in ``(start, end)`` (naive times are UTC)
        that has not run; ticks that ran keep their one run (same ids as the live
        schedule). Returns a handle per tick.

        Raises:
            DBOSException: no such schedule, or called from workflow code.
        """
        return cls._service().schedules.backfill(schedule_name, start, end)
