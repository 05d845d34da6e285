"""The ``DBOS`` facade's cron schedules (mixed into ``DBOS``).

Names and signatures are DBOS Transact 3.x's (``create_schedule`` and its companions)
and 2.x's ``@DBOS.scheduled`` decorator. Schedules live in PostgreSQL and are fired by
the workers' own timekeeping: no beat is needed (see
:mod:`celery_durable.integration.schedules`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar, TypedDict, TypeVar

from celery_durable.api.decorators import OPERATION_ATTRIBUTE, WORKFLOW_ATTRIBUTE
from celery_durable.api.handle import WorkflowHandle
from celery_durable.engine.context import in_workflow_code
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.integration.runtime import Runtime
from celery_durable.integration.schedules import check_cron
from celery_durable.store.schedules import ScheduleRow

F = TypeVar("F", bound=Callable[..., Any])


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
    next_fire_at: str


class WorkflowSchedules:
    """``create_schedule`` and its companions, and ``@DBOS.scheduled``, on ``DBOS``."""

    # @DBOS.scheduled workflows (name -> cron), kept by DBOS (decorators run at import).
    _scheduled_workflows: ClassVar[dict[str, str]]

    @classmethod
    def _runtime(cls) -> Runtime:
        raise NotImplementedError  # DBOS provides it

    @classmethod
    def _current_runtime(cls) -> Runtime | None:
        raise NotImplementedError  # DBOS provides it

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
        check_cron(cron)

        def decorator(function: F) -> F:
            spec = _spec_of(function)
            cls._scheduled_workflows[spec.name] = cron
            runtime = cls._current_runtime()
            if runtime is not None:
                runtime.operator.schedules.declare(spec.name, cron)
            return function

        return decorator

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

        Raises:
            DBOSException: a bad cron or time zone, an unregistered workflow, an
                undeclared queue, or a name already taken (nothing is written).
        """
        _outside_workflow_code("create_schedule")
        runtime = cls._runtime()
        spec = _spec_of(workflow_fn)
        keeper = runtime.operator.schedules
        keeper.create(
            keeper.new_schedule(
                schedule_name=schedule_name,
                spec=spec,
                schedule=schedule,
                kind="schedule",
                context=context,
                automatic_backfill=automatic_backfill,
                cron_timezone=cron_timezone,
                queue_name=queue_name,
            )
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
    ) -> None:
        await asyncio.to_thread(
            lambda: cls.create_schedule(
                schedule_name=schedule_name,
                workflow_fn=workflow_fn,
                schedule=schedule,
                context=context,
                automatic_backfill=automatic_backfill,
                cron_timezone=cron_timezone,
                queue_name=queue_name,
            )
        )

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """Every schedule, by name, optionally filtered (each filter: one or a list)."""
        runtime = cls._runtime()
        rows = runtime.operator.schedules.store.list_all(
            statuses=_as_list(status),
            workflow_names=_as_list(workflow_name),
            prefixes=_as_list(schedule_name_prefix),
        )
        return [schedule_dict(row, runtime) for row in rows]

    @classmethod
    async def list_schedules_async(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        return await asyncio.to_thread(
            lambda: cls.list_schedules(
                status=status,
                workflow_name=workflow_name,
                schedule_name_prefix=schedule_name_prefix,
            )
        )

    @classmethod
    def get_schedule(cls, name: str) -> WorkflowSchedule | None:
        """The schedule named ``name``, or None."""
        runtime = cls._runtime()
        row = runtime.operator.schedules.store.get(name)
        return None if row is None else schedule_dict(row, runtime)

    @classmethod
    async def get_schedule_async(cls, name: str) -> WorkflowSchedule | None:
        return await asyncio.to_thread(cls.get_schedule, name)

    @classmethod
    def delete_schedule(cls, name: str) -> None:
        """Deletes a schedule (nothing if there is none). Runs already started go on."""
        _outside_workflow_code("delete_schedule")
        cls._runtime().operator.schedules.store.delete(name)

    @classmethod
    async def delete_schedule_async(cls, name: str) -> None:
        await asyncio.to_thread(cls.delete_schedule, name)

    @classmethod
    def pause_schedule(cls, name: str) -> None:
        """Stops a schedule firing until ``resume_schedule`` (nothing if there is none)."""
        _outside_workflow_code("pause_schedule")
        cls._runtime().operator.schedules.store.pause(name)

    @classmethod
    def resume_schedule(cls, name: str) -> None:
        """Fires a paused schedule again from its next tick; the ticks missed while it
        was paused run only with ``automatic_backfill`` (nothing if there is none)."""
        _outside_workflow_code("resume_schedule")
        cls._runtime().operator.schedules.resume(name)

    @classmethod
    def trigger_schedule(cls, schedule_name: str) -> WorkflowHandle[None]:
        """Starts the schedule's workflow now, with the id
        ``sched-{name}-trigger-{now ISO}``.

        Raises:
            DBOSException: no such schedule, or called from workflow code.
        """
        _outside_workflow_code("trigger_schedule")
        runtime = cls._runtime()
        workflow_id = runtime.operator.schedules.trigger(schedule_name)
        return WorkflowHandle(workflow_id, runtime.process.store, runtime.process.serializer)

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
        _outside_workflow_code("backfill_schedule")
        runtime = cls._runtime()
        ids = runtime.operator.schedules.backfill(schedule_name, start, end)
        return [WorkflowHandle(i, runtime.process.store, runtime.process.serializer) for i in ids]


def schedule_dict(row: ScheduleRow, runtime: Runtime) -> WorkflowSchedule:
    return WorkflowSchedule(
        schedule_id=row.schedule_id,
        schedule_name=row.schedule_name,
        workflow_name=row.workflow_name,
        workflow_class_name=None,
        schedule=row.schedule,
        status=row.status,
        context=runtime.process.serializer.loads(row.context),
        last_fired_at=row.last_fired_at,
        automatic_backfill=row.automatic_backfill,
        cron_timezone=row.cron_timezone,
        queue_name=row.queue_name,
        next_fire_at=dt.datetime.fromtimestamp(row.next_fire_epoch_ms / 1000, dt.UTC).isoformat(),
    )


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _spec_of(function: Callable[..., Any]) -> WorkflowSpec:
    spec = getattr(function, WORKFLOW_ATTRIBUTE, None)
    if not isinstance(spec, WorkflowSpec):
        label = getattr(function, "__qualname__", repr(function))
        operation = getattr(function, OPERATION_ATTRIBUTE, None)
        if operation is not None:
            raise DBOSException(
                f"'{label}' is a {operation}: only workflows can be scheduled (schedule a "
                f"@DBOS.workflow() that calls it)"
            )
        raise DBOSException(
            f"Workflow function '{label}' is not registered: decorate it with "
            "@DBOS.workflow() (below @DBOS.scheduled)"
        )
    return spec


def _outside_workflow_code(method: str) -> None:
    if in_workflow_code() is not None:
        raise DBOSException(
            f"DBOS.{method} cannot be called from workflow code (call it from a step)"
        )
