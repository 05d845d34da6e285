"""Cron schedules in the system database: their rows, and the pass that fires them.

The store never computes a cron: the pass hands each due schedule to a planner from
the layer above, which returns the tick workflows to create and the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.connections import Connections
from celery_durable.store.rows import NewWorkflow
from celery_durable.store.sql import schedules as schedule_sql
from celery_durable.store.sql import workflows
from celery_durable.store.workflow_store import new_workflow_params

ScheduleKind = Literal["schedule", "decorator"]


@dataclass(frozen=True, kw_only=True)
class NewSchedule:
    schedule_name: str
    schedule_id: str
    kind: ScheduleKind
    workflow_name: str
    schedule: str
    context: str  # serialized
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    next_fire_epoch_ms: int


@dataclass(frozen=True, kw_only=True)
class ScheduleRow:
    schedule_id: str
    schedule_name: str
    kind: ScheduleKind
    workflow_name: str
    schedule: str
    status: str
    context: str
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    next_fire_epoch_ms: int
    last_fired_at: str | None
    created_at_epoch_ms: int


@dataclass(frozen=True, kw_only=True)
class DueSchedule:
    """A schedule whose next tick has passed, and when the previous pass ran (None:
    never)."""

    schedule_name: str
    kind: ScheduleKind
    workflow_name: str
    schedule: str
    context: str
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    next_fire_epoch_ms: int
    previous_pass_epoch_ms: int | None


@dataclass(frozen=True, kw_only=True)
class TickPlan:
    """What a pass does for one due schedule: create ``ticks`` (each a workflow whose
    id names the tick), then move the next tick to ``next_fire_epoch_ms``."""

    ticks: list[NewWorkflow]
    next_fire_epoch_ms: int
    last_fired_at: str | None


class ScheduleStore:
    """The schedules of one system database (on the store's pooled connections)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def _one(self, action: str, statement: Any, params: dict[str, Any]) -> Any:
        # One autocommit statement, sent again once on a pooled connection that died.
        return self._connections.run(action, lambda c: c.execute(statement, params).first())

    def create(self, schedule: NewSchedule) -> bool:
        """Inserts a schedule; False if its name is taken (nothing written)."""
        row = self._one(
            f"creating schedule {schedule.schedule_name!r}",
            schedule_sql.CREATE_SCHEDULE,
            _params(schedule),
        )
        return row is not None

    def declare(self, schedules: list[NewSchedule]) -> None:
        """Creates or updates the ``@DBOS.scheduled`` schedules of this code."""
        if not schedules:
            return
        with self._connections.transaction("declaring scheduled workflows") as connection:
            connection.execute(
                schedule_sql.UPSERT_DECORATED_SCHEDULE, [_params(s) for s in schedules]
            )

    def apply(self, schedules: list[NewSchedule]) -> None:
        """Creates each schedule, or replaces the definition of the one of its name
        (keeping its id, status and last tick), all in one transaction."""
        if not schedules:
            return
        with self._connections.transaction("applying schedules") as connection:
            for schedule in schedules:
                connection.execute(schedule_sql.UPSERT_SCHEDULE, _params(schedule))

    def list_all(
        self,
        *,
        statuses: list[str] | None = None,
        workflow_names: list[str] | None = None,
        prefixes: list[str] | None = None,
    ) -> list[ScheduleRow]:
        params = {"statuses": statuses, "workflow_names": workflow_names, "prefixes": prefixes}
        rows = self._connections.run(
            "listing schedules",
            lambda c: c.execute(schedule_sql.LIST_SCHEDULES, params).all(),
        )
        return [ScheduleRow(**row._asdict()) for row in rows]

    def get(self, schedule_name: str) -> ScheduleRow | None:
        row = self._one(
            f"reading schedule {schedule_name!r}",
            schedule_sql.GET_SCHEDULE,
            {"schedule_name": schedule_name},
        )
        return None if row is None else ScheduleRow(**row._asdict())

    def pause(self, schedule_name: str) -> bool:
        """False if there is no such schedule."""
        row = self._one(
            f"pausing schedule {schedule_name!r}",
            schedule_sql.PAUSE_SCHEDULE,
            {"schedule_name": schedule_name, "now": now_epoch_ms()},
        )
        return row is not None

    def resume(self, schedule_name: str, next_fire_epoch_ms: int) -> bool:
        """Makes a schedule ACTIVE; a paused one's next tick becomes
        ``next_fire_epoch_ms`` unless it backfills automatically. False if there is no
        such schedule."""
        row = self._one(
            f"resuming schedule {schedule_name!r}",
            schedule_sql.RESUME_SCHEDULE,
            {
                "schedule_name": schedule_name,
                "next_fire": next_fire_epoch_ms,
                "now": now_epoch_ms(),
            },
        )
        return row is not None

    def delete(self, schedule_name: str) -> bool:
        """False if there is no such schedule."""
        row = self._one(
            f"deleting schedule {schedule_name!r}",
            schedule_sql.DELETE_SCHEDULE,
            {"schedule_name": schedule_name},
        )
        return row is not None

    def fire_due(
        self,
        plan: Callable[[DueSchedule, int], TickPlan | None],
        *,
        workflow_names: list[str],
        decorated: list[str],
        limit: int,
    ) -> list[NewWorkflow]:
        """One schedule pass, in one transaction: locks the due schedules, creates the
        tick workflows ``plan`` asks for (a tick that exists already is skipped: each
        runs once) and moves each schedule's next tick. Nothing while another pass runs.

        Args:
            plan: For each due schedule and the pass's time (epoch ms), what to do
                (None: leave it due).
            workflow_names: The workflows this process can start (others are left to a
                process that has their code).
            decorated: The ``@DBOS.scheduled`` schedules this process's code declares.

        Returns:
            The tick workflows created (ENQUEUED): publish them.
        """
        created: list[NewWorkflow] = []
        with self._connections.transaction("firing schedules") as connection:
            now = now_epoch_ms()
            due = connection.execute(
                schedule_sql.DUE_SCHEDULES,
                {
                    "now": now,
                    "workflow_names": workflow_names,
                    "decorated": decorated,
                    "limit": limit,
                },
            ).all()
            for row in due:
                planned = plan(DueSchedule(**row._asdict()), now)
                if planned is None:
                    continue
                for tick in planned.ticks:
                    inserted = connection.execute(
                        workflows.INSERT_WORKFLOW,
                        new_workflow_params(tick)
                        | {"status": tick.status, "now": now, "require_registered": False},
                    ).first()
                    if inserted is not None and inserted.inserted:
                        created.append(tick)
                connection.execute(
                    schedule_sql.ADVANCE_SCHEDULE,
                    {
                        "schedule_name": row.schedule_name,
                        "next_fire": planned.next_fire_epoch_ms,
                        "last_fired_at": planned.last_fired_at,
                        "now": now,
                    },
                )
        return created


def _params(schedule: NewSchedule) -> dict[str, Any]:
    return {
        "schedule_name": schedule.schedule_name,
        "schedule_id": schedule.schedule_id,
        "kind": schedule.kind,
        "workflow_name": schedule.workflow_name,
        "schedule": schedule.schedule,
        "context": schedule.context,
        "automatic_backfill": schedule.automatic_backfill,
        "cron_timezone": schedule.cron_timezone,
        "queue_name": schedule.queue_name,
        "next_fire": schedule.next_fire_epoch_ms,
        "now": now_epoch_ms(),
    }
