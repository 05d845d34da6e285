"""One execution of one workflow: the connection that holds its fence."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store import queries
from celery_durable.store.errors import wrap_errors
from celery_durable.store.rows import Claim, Rescheduled

StatementListener = Callable[[str], None]


class WorkflowExecution:
    """One execution of one workflow: a connection holding the workflow's fence.

    Statements run in autocommit mode, so each one is its own transaction. The
    per-step checkpoint goes straight to the driver's connection: SQLAlchemy's
    execution machinery would cost a sixth of the statement's own round trip.
    ``listeners`` hear of each such statement (SQLAlchemy's events do not see it).
    """

    def __init__(
        self,
        connection: Connection,
        workflow_uuid: str,
        claim: Claim,
        listeners: Sequence[StatementListener] = (),
    ) -> None:
        self._connection = connection
        driver = connection.connection.driver_connection
        assert driver is not None  # a checked-out connection has its driver's
        self._driver: Any = driver
        # One cursor for every statement of the execution (prepared on the server).
        self._cursor: Any = driver.cursor()
        self._listeners = listeners
        self.workflow_uuid = workflow_uuid
        self.claim = claim
        self.fenced = claim.outcome == "claimed"

    def _send(
        self, action: Callable[[], str], sql: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """One statement on the driver's connection; returns its first row.

        ``action`` describes the statement for an error message (built only then).
        """
        for listener in self._listeners:
            listener(sql)
        try:
            row: tuple[Any, ...] | None = self._cursor.execute(sql, params).fetchone()
        except psycopg.Error as error:
            raise DBOSSystemDatabaseError(f"System database error while {action()}: {error}") from (
                error
            )
        return row

    def record_step(self, step: StepRecord) -> str | None:
        """Writes a step's checkpoint (one INSERT, or an upsert after a retry).

        Returns:
            The workflow's status at that moment (CANCELLED means: stop here), or None
            if the checkpoint was already complete.
        """
        row = self._send(
            lambda: f"recording step {step.function_id} of {self.workflow_uuid}",
            queries.RECORD_STEP_SQL,
            {"workflow_uuid": self.workflow_uuid, **dataclasses.asdict(step)},
        )
        return None if row is None else str(row[0])

    def complete(self, status: str, *, output: str | None, error: str | None) -> bool:
        """Records the workflow's outcome and releases the fence.

        Returns:
            False if the workflow was no longer PENDING (for example cancelled), in
            which case nothing was written.
        """
        row = self._send(
            lambda: f"completing workflow {self.workflow_uuid}",
            queries.COMPLETE_WORKFLOW_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "status": status,
                "output": output,
                "error": error,
                "now": now_epoch_ms(),
            },
        )
        if row is None:
            self.release()
            return False
        self.fenced = False
        return True

    def reschedule(self, *, due_at_epoch_ms: int, parked: bool) -> Rescheduled | None:
        """Releases the workflow until ``due_at_epoch_ms`` (sooner if a child woke it).

        Returns:
            None if the workflow was no longer PENDING (nothing to run later).
        """
        with wrap_errors(f"rescheduling workflow {self.workflow_uuid}"):
            row = self._connection.execute(
                queries.RESCHEDULE_WORKFLOW,
                {
                    "workflow_uuid": self.workflow_uuid,
                    "due": due_at_epoch_ms,
                    "parked": parked,
                    "now": now_epoch_ms(),
                },
            ).first()
        if row is None:
            self.release()
            return None
        self.fenced = False
        return Rescheduled(
            generation=int(row.dispatch_generation),
            due_at_epoch_ms=int(row.next_dispatch_at_epoch_ms),
            parked=bool(row.dispatch_parked),
        )

    def release(self) -> None:
        """Releases the workflow if this execution still owns it (no outcome)."""
        if not self.fenced:
            return
        with wrap_errors(f"releasing workflow {self.workflow_uuid}"):
            row = self._connection.execute(
                queries.RELEASE_WORKFLOW,
                {"workflow_uuid": self.workflow_uuid, "now": now_epoch_ms()},
            ).first()
            if row is None:
                self._connection.execute(
                    queries.RELEASE_FENCE, {"workflow_uuid": self.workflow_uuid}
                )
        self.fenced = False


def parse_checkpoints(aggregated: list[list[Any]] | None) -> dict[int, StepRecord]:
    """Parses the ``json_agg`` of ``claim_workflow``: one array per step, its columns
    in ``StepRecord``'s field order."""
    records = (
        StepRecord(**dict(zip(_STEP_FIELDS, columns, strict=True))) for columns in aggregated or ()
    )
    return {record.function_id: record for record in records}


_STEP_FIELDS = tuple(field.name for field in dataclasses.fields(StepRecord))
