"""Cron schedules the Celery way: the workers' own timekeeping fires them, no beat.

Every worker's main process runs :meth:`ScheduleKeeper.fire` from its timekeeping pass
(about once a second). One pass at a time across the fleet (a PostgreSQL advisory lock)
locks the ACTIVE schedules whose next tick has passed, creates each tick as a workflow
with the id ``sched-{name}-{tick ISO}`` (as DBOS) and moves the schedule's next tick, in
one transaction; the new workflows are then published. The id makes each tick run once
even with two beats, a restarted worker or several workers: a tick created twice is
inserted once (``ON CONFLICT DO NOTHING``).

Missed ticks: the pass records when it ran. A tick that came due while the fleet was
running (the previous pass is at most ``LIVE_GAP_MS`` old) is fired, however late; ticks
that came due while nothing ran are skipped, unless the schedule has
``automatic_backfill`` (then every tick since the last one fired) or
``backfill_schedule`` asks for them.

Cron expressions have 5 fields, or 6 with the seconds first (croniter's
``second_at_beginning``, as DBOS); next ticks are computed here, in Python, and stored
in PostgreSQL as epoch milliseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from celery_durable.core.records import INTERNAL_QUEUE_NAME
from celery_durable.engine.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.integration.enqueue import EnqueueSettings
from celery_durable.store.rows import NewWorkflow
from celery_durable.store.schedule_store import (
    DueSchedule,
    NewSchedule,
    ScheduleKind,
    ScheduleRow,
    TickPlan,
)

if TYPE_CHECKING:
    from celery_durable.integration.process import ProcessServices
    from celery_durable.integration.starting import WorkflowStarter

logger = logging.getLogger("celery_durable.schedules")

# The previous pass ran at most this long ago: the fleet was running, so every tick
# since then is fired. Passes come each second; this allows for slow ones.
LIVE_GAP_MS = 10_000

# The most ticks of one schedule a pass creates (a long backfill goes on next pass),
# and the most due schedules a pass takes.
MAX_TICKS_PER_PASS = 1000
MAX_SCHEDULES_PER_PASS = 100


# Each field's name and values, in order (a 6-field cron has the seconds first).
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
)
_SECOND = ("second", "0-59")
_SHAPE = "a cron has 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first"


def check_cron(schedule: str) -> None:
    """Raises ``DBOSException`` unless ``schedule`` is a 5- or 6-field cron, saying why:
    the number of fields, or which field is wrong and what it takes."""
    if not isinstance(schedule, str):
        raise DBOSException(f"Invalid cron schedule: {schedule!r} is not a string; {_SHAPE}")
    if croniter.is_valid(schedule, second_at_beginning=True):
        return
    fields = schedule.split()
    if len(fields) not in (5, 6):
        raise DBOSException(
            f"Invalid cron schedule: '{schedule}' has {len(fields)} fields; {_SHAPE}"
        )
    names = _FIELDS if len(fields) == 5 else (_SECOND, *_FIELDS)
    for index, ((name, values), field) in enumerate(zip(names, fields, strict=True)):
        alone = ["*"] * len(fields)
        alone[index] = field
        if not croniter.is_valid(" ".join(alone), second_at_beginning=True):
            raise DBOSException(
                f"Invalid cron schedule: '{schedule}': the {name} field '{field}' is not "
                f"valid (it takes {values}, lists, ranges and */steps)"
            )
    try:
        croniter(schedule, second_at_beginning=True)
    except (CroniterError, ValueError) as error:
        raise DBOSException(f"Invalid cron schedule: '{schedule}': {error}") from None
    raise DBOSException(f"Invalid cron schedule: '{schedule}'; {_SHAPE}")


def zone(name: str | None) -> dt.tzinfo:
    """The cron's time zone (UTC by default)."""
    if name is None:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except Exception as error:
        raise DBOSException(f"Invalid timezone: '{name}'") from error


def next_tick(schedule: str, tz: dt.tzinfo, after: dt.datetime) -> dt.datetime:
    """The first tick strictly after ``after``, in ``tz``."""
    result = croniter(schedule, after.astimezone(tz), second_at_beginning=True).get_next(
        dt.datetime
    )
    assert isinstance(result, dt.datetime)
    return result


def ticks_between(
    schedule: str, tz: dt.tzinfo, start: dt.datetime, end: dt.datetime
) -> list[dt.datetime]:
    """Every tick in ``(start, end)`` (both exclusive, as DBOS's backfill)."""
    found: list[dt.datetime] = []
    tick = next_tick(schedule, tz, start)
    while tick < end:
        found.append(tick)
        tick = next_tick(schedule, tz, tick)
    return found


def epoch_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_epoch_ms(epoch: int, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch / 1000, tz)


# Every run of a schedule has an id that starts so (as in DBOS): listings can leave
# them out.
SCHEDULED_ID_PREFIX = "sched-"


def tick_workflow_id(schedule_name: str, tick: dt.datetime) -> str:
    return f"{SCHEDULED_ID_PREFIX}{schedule_name}-{tick.isoformat()}"


class ScheduleKeeper:
    """The schedules of one configuration: creating them, and firing their ticks."""

    def __init__(self, process: ProcessServices, starter: WorkflowStarter) -> None:
        self._process = process
        self._starter = starter
        self.store = process.store.schedules
        # @DBOS.scheduled workflows of this code: name -> cron.
        self.decorated: dict[str, str] = {}
        self._declared_pid = 0

    # -- defining schedules -----------------------------------------------------------

    def new_schedule(
        self,
        *,
        schedule_name: str,
        spec: WorkflowSpec,
        schedule: str,
        kind: ScheduleKind,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        check_queue: bool = True,
    ) -> NewSchedule:
        """A checked schedule, not yet written (bad input raises ``DBOSException``).

        ``check_queue=False``: a producer without the code (``DBOSClient``) names the
        queue of the workers' code, unknown here (DBOS's client does not check it)."""
        if not isinstance(schedule_name, str) or not schedule_name:
            raise DBOSException("schedule_name must be a non-empty string")
        check_cron(schedule)
        tz = zone(cron_timezone)
        if (
            check_queue
            and queue_name is not None
            and queue_name not in self._process.queues
            and self._process.store.queues.get(queue_name) is None
        ):
            raise DBOSException(
                f"Queue '{queue_name}' is not declared. Declare it with Queue(...) or "
                "DBOS.register_queue before using it in a schedule"
            )
        now = dt.datetime.now(dt.UTC)
        return NewSchedule(
            schedule_name=schedule_name,
            schedule_id=str(uuid.uuid4()),
            kind=kind,
            workflow_name=spec.name,
            schedule=schedule,
            context=self._process.serializer.dumps(context),
            automatic_backfill=bool(automatic_backfill),
            cron_timezone=cron_timezone,
            queue_name=queue_name,
            next_fire_epoch_ms=epoch_ms(next_tick(schedule, tz, now)),
        )

    def create(self, new: NewSchedule) -> None:
        if not self.store.create(new):
            raise DBOSException(f"Schedule '{new.schedule_name}' already exists")

    def declare(self, name: str, cron: str) -> None:
        """An ``@DBOS.scheduled`` workflow of this code (written at launch and by the
        first pass of each worker process)."""
        check_cron(cron)
        self.decorated[name] = cron
        self._declared_pid = 0

    def write_declared(self) -> None:
        """Writes this code's ``@DBOS.scheduled`` schedules (a changed cron moves the
        next tick)."""
        schedules = []
        for name, cron in sorted(self.decorated.items()):
            spec = self._process.registry.get(name)
            if spec is None:
                continue
            schedules.append(
                self.new_schedule(schedule_name=name, spec=spec, schedule=cron, kind="decorator")
            )
        self.store.declare(schedules)
        self._declared_pid = os.getpid()

    def resume(self, schedule_name: str) -> bool:
        row = self.store.get(schedule_name)
        if row is None:
            return False
        now = dt.datetime.now(dt.UTC)
        upcoming = next_tick(row.schedule, zone(row.cron_timezone), now)
        return self.store.resume(schedule_name, epoch_ms(upcoming))

    # -- firing ticks -----------------------------------------------------------------

    def fire(self) -> int:
        """One pass: creates and publishes the ticks that are due; returns how many."""
        if self.decorated and self._declared_pid != os.getpid():
            self.write_declared()
        created = self.store.fire_due(
            self._plan,
            workflow_names=[spec.name for spec in self._process.registry.all()],
            decorated=list(self.decorated),
            limit=MAX_SCHEDULES_PER_PASS,
        )
        self._publish(created)
        return len(created)

    def _plan(self, due: DueSchedule, now_ms: int) -> TickPlan | None:
        spec = self._process.registry.get(due.workflow_name)
        if spec is None:
            return None
        try:
            tz = zone(due.cron_timezone)
        except DBOSException:
            logger.warning("Schedule %r has an invalid time zone: skipped", due.schedule_name)
            return None
        previous = due.previous_pass_epoch_ms
        live = previous is not None and now_ms - previous <= LIVE_GAP_MS
        now = from_epoch_ms(now_ms, tz)
        tick = from_epoch_ms(due.next_fire_epoch_ms, tz)
        fired: list[dt.datetime] = []
        if live or due.automatic_backfill:
            while tick <= now and len(fired) < MAX_TICKS_PER_PASS:
                fired.append(tick)
                tick = next_tick(due.schedule, tz, tick)
        # A backfill longer than one pass goes on from its next tick next pass.
        upcoming = tick if tick <= now and fired else next_tick(due.schedule, tz, now)
        if not fired and not live:
            logger.info(
                "Schedule %r: ticks missed while no worker ran are skipped (next %s)",
                due.schedule_name,
                upcoming.isoformat(),
            )
        context = self._process.serializer.loads(due.context)
        return TickPlan(
            ticks=[
                self._tick_row(spec, due.schedule_name, due.kind, t, context, due.queue_name)
                for t in fired
            ],
            next_fire_epoch_ms=epoch_ms(upcoming),
            last_fired_at=fired[-1].isoformat() if fired else None,
        )

    def _tick_row(
        self,
        spec: WorkflowSpec,
        schedule_name: str,
        kind: str,
        tick: dt.datetime,
        context: Any,
        queue_name: str | None,
        *,
        workflow_id: str | None = None,
    ) -> NewWorkflow:
        second = context if kind == "schedule" else dt.datetime.now(dt.UTC)
        arguments: tuple[Any, ...] = (tick, second)
        owner = spec.membership.owner
        if spec.membership.kind == "class" and owner is not None:
            arguments = (owner, *arguments)  # a class method's receiver, as when called
        row = self._starter.new_row(
            spec,
            arguments,
            {},
            status="ENQUEUED",
            queue_name=queue_name,
            workflow_id=workflow_id or tick_workflow_id(schedule_name, tick),
            options=EnqueueSettings(),
        )
        # Without a queue of its own, a tick reports DBOS's internal queue, as DBOS's do.
        dbos_queue = queue_name or INTERNAL_QUEUE_NAME
        return dataclasses.replace(row, schedule_name=schedule_name, dbos_queue_name=dbos_queue)

    def _publish(self, created: list[NewWorkflow]) -> None:
        for row in created:
            # A failed publish is left to the recovery sweep: the row is ENQUEUED. A
            # producer without a broker (DBOSClient) has the workers' relay publish it.
            self._starter.publish_new(row)

    # -- on demand --------------------------------------------------------------------

    def _schedule(self, schedule_name: str) -> tuple[ScheduleRow, WorkflowSpec]:
        row = self.store.get(schedule_name)
        if row is None:
            raise DBOSException(f"Schedule '{schedule_name}' does not exist")
        return row, self.spec_named(row.workflow_name)

    def spec_named(self, workflow_name: str) -> WorkflowSpec:
        """The workflow of this code named so; in a process without the code (a
        producer, the CLI), a stand-in that starts it by name, as DBOSClient does (the
        workers' code has the final say on its settings)."""
        spec = self._process.registry.get(workflow_name)
        if spec is None:
            spec = WorkflowSpec(
                name=workflow_name,
                function=_not_here,
                is_async=False,
                max_recovery_attempts=DEFAULT_MAX_RECOVERY_ATTEMPTS,
            )
        return spec

    def backfill(self, schedule_name: str, start: dt.datetime, end: dt.datetime) -> list[str]:
        """Creates every tick in ``(start, end)`` that does not exist yet (naive times
        are UTC); returns every tick's workflow id, in order."""
        row, spec = self._schedule(schedule_name)
        tz = zone(row.cron_timezone)
        start = start if start.tzinfo is not None else start.replace(tzinfo=dt.UTC)
        end = end if end.tzinfo is not None else end.replace(tzinfo=dt.UTC)
        context = self._process.serializer.loads(row.context)
        ids: list[str] = []
        for tick in ticks_between(row.schedule, tz, start, end):
            new = self._tick_row(spec, row.schedule_name, row.kind, tick, context, row.queue_name)
            if self._starter.insert(new).inserted:
                self._publish([new])
            ids.append(new.workflow_uuid)
        return ids

    def trigger(self, schedule_name: str) -> str:
        """Starts the schedule's workflow now (id ``sched-{name}-trigger-{now ISO}``)."""
        row, spec = self._schedule(schedule_name)
        now = dt.datetime.now(dt.UTC)
        workflow_id = f"{SCHEDULED_ID_PREFIX}{row.schedule_name}-trigger-{now.isoformat()}"
        context = self._process.serializer.loads(row.context)
        new = self._tick_row(
            spec,
            row.schedule_name,
            row.kind,
            now,
            context,
            row.queue_name,
            workflow_id=workflow_id,
        )
        if self._starter.insert(new).inserted:
            self._publish([new])
        return workflow_id


def _not_here(*args: Any, **kwargs: Any) -> Any:
    raise DBOSException("This process does not define the scheduled workflow")
