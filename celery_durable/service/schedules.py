"""Cron schedules' operations, shared by ``DBOS`` and the ``celery-durable schedules``
command: names and semantics are DBOS Transact 3.x's (``create_schedule`` and its
companions) and 2.x's ``@DBOS.scheduled``. Schedules live in PostgreSQL and are fired
by the workers' own timekeeping (:mod:`celery_durable.integration.schedule_keeper`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from celery_durable.engine.context import in_workflow_code
from celery_durable.engine.recorded_calls import call_recorded
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.integration.runtime import Runtime
from celery_durable.integration.schedule_keeper import SCHEDULED_ID_PREFIX, check_cron
from celery_durable.service.decorators import OPERATION_ATTRIBUTE, WORKFLOW_ATTRIBUTE
from celery_durable.service.handles import WorkflowHandle
from celery_durable.service.schedule_inputs import (
    ClientScheduleInput,
    ScheduleInput,
    missing_field,
    refuse_class_name,
    refuse_owner,
)
from celery_durable.service.schedule_listing import WorkflowSchedule, schedule_dict
from celery_durable.store.schedule_store import NewSchedule, ScheduleRow

__all__ = ["SCHEDULED_ID_PREFIX", "ScheduleService", "WorkflowSchedule", "declare_scheduled"]

F = TypeVar("F", bound=Callable[..., Any])


class ScheduleService:
    """Creating, reading and operating the cron schedules of one configuration.

    As in DBOS, workflow code's calls of ``create``, ``find``, ``get``, ``delete``,
    ``pause`` and ``resume`` are recorded operations (``DBOS.createSchedule``, ...,
    replayed from the record); ``apply``, ``trigger`` and ``backfill`` refuse to run
    there. The pause and resume methods return whether the schedule exists.
    """

    def __init__(self, runtime: Runtime, handle: Callable[[str], WorkflowHandle[Any]]) -> None:
        self._runtime = runtime
        self._handle = handle

    def create(
        self,
        *,
        schedule_name: str,
        workflow_fn: Callable[..., Any],
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
    ) -> None:
        """In workflow code, recorded as ``DBOS.createSchedule`` (as DBOS): a replay
        returns what the first execution got, its error included."""
        keeper = self._runtime.operator.schedules

        def create() -> None:
            keeper.create(
                keeper.new_schedule(
                    schedule_name=schedule_name,
                    spec=_scheduled_spec(workflow_fn),
                    schedule=schedule,
                    kind="schedule",
                    context=context,
                    automatic_backfill=automatic_backfill,
                    cron_timezone=cron_timezone,
                    queue_name=queue_name,
                )
            )

        call_recorded("DBOS.createSchedule", create)

    async def create_async(
        self,
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
            self.create,
            schedule_name=schedule_name,
            workflow_fn=workflow_fn,
            schedule=schedule,
            context=context,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
        )

    def find(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """``application_name`` selects the schedules an application owns and those no
        application owns (DBOS's filter); no schedule has an owner here, so it selects
        every one, as ``list_workflows``'s does."""
        store = self._runtime.operator.schedules.store
        return call_recorded(
            "DBOS.listSchedules",
            lambda: [
                self._dict(row)
                for row in store.list_all(
                    statuses=_as_list(status),
                    workflow_names=_as_list(workflow_name),
                    prefixes=_as_list(schedule_name_prefix),
                )
            ],
        )

    async def find_async(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        return await asyncio.to_thread(
            self.find,
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
            application_name=application_name,
        )

    def create_by_name(
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
        """``DBOSClient.create_schedule``: the workflow by name, from a process that
        need not have its code (the workers that have it fire the schedule)."""
        _outside_workflow_code("create_schedule")
        self._runtime.operator.schedules.create(
            self._by_name(
                ClientScheduleInput(
                    schedule_name=schedule_name,
                    workflow_name=workflow_name,
                    workflow_class_name=workflow_class_name,
                    schedule=schedule,
                    context=context,
                    automatic_backfill=automatic_backfill,
                    cron_timezone=cron_timezone,
                    queue_name=queue_name,
                    application_name=application_name,
                    shard_key=shard_key,
                )
            )
        )

    async def create_by_name_async(self, **options: Any) -> None:
        """``create_by_name`` for async callers (``options``: its keywords)."""
        await asyncio.to_thread(lambda: self.create_by_name(**options))

    def apply(self, schedules: list[ScheduleInput]) -> None:
        """``DBOS.apply_schedules``: creates or replaces each schedule (see
        :meth:`ScheduleStore.apply`), all or none (every entry is checked first)."""
        _outside_workflow_code("apply_schedules")
        missing_field(schedules, ("schedule_name", "workflow_fn", "schedule"))
        keeper = self._runtime.operator.schedules
        checked = []
        for entry in schedules:
            refuse_owner(None, entry.get("shard_key"))
            checked.append(
                keeper.new_schedule(
                    schedule_name=entry["schedule_name"],
                    spec=_scheduled_spec(entry["workflow_fn"]),
                    schedule=entry["schedule"],
                    kind="schedule",
                    context=entry.get("context"),
                    automatic_backfill=entry.get("automatic_backfill", False),
                    cron_timezone=entry.get("cron_timezone"),
                    queue_name=entry.get("queue_name"),
                )
            )
        keeper.store.apply(checked)

    async def apply_async(self, schedules: list[ScheduleInput]) -> None:
        await asyncio.to_thread(self.apply, schedules)

    def apply_by_name(self, schedules: list[ClientScheduleInput]) -> None:
        """``DBOSClient.apply_schedules``: :meth:`apply`, the workflows by name."""
        _outside_workflow_code("apply_schedules")
        missing_field(schedules, ("schedule_name", "workflow_name", "schedule"))
        checked = [self._by_name(entry) for entry in schedules]
        self._runtime.operator.schedules.store.apply(checked)

    async def apply_by_name_async(self, schedules: list[ClientScheduleInput]) -> None:
        await asyncio.to_thread(self.apply_by_name, schedules)

    def _by_name(self, entry: ClientScheduleInput) -> NewSchedule:
        refuse_owner(entry.get("application_name"), entry.get("shard_key"))
        refuse_class_name(entry.get("workflow_class_name"))
        workflow_name = entry["workflow_name"]
        if not isinstance(workflow_name, str) or not workflow_name:
            raise DBOSException(f"workflow_name must be a non-empty string, not {workflow_name!r}")
        keeper = self._runtime.operator.schedules
        return keeper.new_schedule(
            schedule_name=entry["schedule_name"],
            spec=keeper.spec_named(workflow_name),
            schedule=entry["schedule"],
            kind="schedule",
            context=entry.get("context"),
            automatic_backfill=entry.get("automatic_backfill", False),
            cron_timezone=entry.get("cron_timezone"),
            queue_name=entry.get("queue_name"),
            check_queue=False,
        )

    def get(self, name: str) -> WorkflowSchedule | None:
        store = self._runtime.operator.schedules.store

        def get() -> WorkflowSchedule | None:
            row = store.get(name)
            return None if row is None else self._dict(row)

        return call_recorded("DBOS.getSchedule", get)

    async def get_async(self, name: str) -> WorkflowSchedule | None:
        return await asyncio.to_thread(self.get, name)

    def delete(self, name: str) -> None:
        store = self._runtime.operator.schedules.store
        call_recorded("DBOS.deleteSchedule", lambda: store.delete(name))

    async def delete_async(self, name: str) -> None:
        await asyncio.to_thread(self.delete, name)

    def pause(self, name: str) -> bool:
        store = self._runtime.operator.schedules.store
        return call_recorded("DBOS.pauseSchedule", lambda: store.pause(name))

    def resume(self, name: str) -> bool:
        keeper = self._runtime.operator.schedules
        return call_recorded("DBOS.resumeSchedule", lambda: keeper.resume(name))

    def trigger(self, schedule_name: str) -> WorkflowHandle[None]:
        _outside_workflow_code("trigger_schedule")
        return self._handle(self._runtime.operator.schedules.trigger(schedule_name))

    def backfill(
        self, schedule_name: str, start: dt.datetime, end: dt.datetime
    ) -> list[WorkflowHandle[None]]:
        _outside_workflow_code("backfill_schedule")
        ids = self._runtime.operator.schedules.backfill(schedule_name, start, end)
        return [self._handle(workflow_id) for workflow_id in ids]

    def declare(self, workflow_name: str, cron: str) -> None:
        """An ``@DBOS.scheduled`` workflow of this process's code."""
        self._runtime.operator.schedules.declare(workflow_name, cron)

    def _dict(self, row: ScheduleRow) -> WorkflowSchedule:
        return schedule_dict(row, self._runtime.process)


class HasSchedules(Protocol):
    """What ``@DBOS.scheduled`` needs of the configured service
    (:class:`~celery_durable.service.workflows.WorkflowService`): its schedules."""

    @property
    def schedules(self) -> ScheduleService: ...


def declare_scheduled(
    scheduled: dict[str, str], current: Callable[[], HasSchedules | None], cron: str
) -> Callable[[F], F]:
    """``@DBOS.scheduled(cron)``: records the workflow's cron in ``scheduled`` (the
    process's, kept by the facade: decorators run at import) and declares it to the
    service configured now, if any.

    Raises:
        DBOSException: a bad cron, or the function is not a workflow.
    """
    check_cron(cron)

    def decorator(function: F) -> F:
        name = _scheduled_spec(function).name
        scheduled[name] = cron
        service = current()
        if service is not None:
            service.schedules.declare(name, cron)
        return function

    return decorator


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _scheduled_spec(function: Callable[..., Any]) -> WorkflowSpec:
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
    if spec.membership.kind == "instance":
        # A schedule has no instance to call it on (as DBOS refuses it).
        raise DBOSException("Configured instance methods cannot be used as scheduled workflows")
    return spec


def _outside_workflow_code(method: str) -> None:
    if in_workflow_code() is not None:
        raise DBOSException(f"DBOS.{method} cannot be called from within a workflow")
