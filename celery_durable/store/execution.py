"""One execution of one workflow: its statements, fenced."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, Wait
from celery_durable.store.fence import Fence, FenceLost, StatementListener
from celery_durable.store.group_commit import GroupCommit
from celery_durable.store.rows import (
    Claim,
    Dispatch,
    Received,
    Rescheduled,
    Sent,
    Woken,
)
from celery_durable.store.sql import messaging, task_calls, workflows

__all__ = ["StatementListener", "WorkflowExecution"]


class WorkflowExecution:
    """One execution of one workflow: it holds the workflow's fence.

    The fence (an advisory lock) is on the process's :class:`Fence` connection: the
    claim took it there, and the statements that end the execution (outcome,
    reschedule, release) run there and let go of it in the same statement. So do the
    messaging statements, which are rare. A step's checkpoint, the per-step hot path,
    goes through the process's :class:`GroupCommit` instead (a pooled connection for its
    one statement, shared with the checkpoints of other executions that wait at the
    same moment), conditional on the claim's ``owner_token``: an execution whose fence
    died (and whose workflow another execution then claimed) cannot write. Statements
    run in autocommit mode, each its own transaction, straight on the driver
    (SQLAlchemy's execution machinery would cost a sixth of a statement's round trip).
    """

    def __init__(
        self,
        fence: Fence,
        checkpoints: GroupCommit,
        workflow_uuid: str,
        claim: Claim,
        *,
        epoch: int,
        owner_token: int,
    ) -> None:
        self._fence = fence
        self._checkpoints = checkpoints
        self._epoch = epoch
        self._owner_token = owner_token
        self.workflow_uuid = workflow_uuid
        self.claim = claim
        self.fenced = claim.outcome == "claimed"

    def _send(
        self, action: Callable[[], str], sql: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """One statement on the fence connection; returns its first row.

        ``action`` describes the statement for an error message (built only then).
        """
        row: tuple[Any, ...] | None = self._fence.send(action, sql, params, epoch=self._epoch)[1]
        return row

    def _send_all(
        self, action: Callable[[], str], sql: str, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """As ``_send``, returning every row."""
        rows: list[tuple[Any, ...]] = self._fence.send(
            action, sql, params, epoch=self._epoch, every_row=True
        )[1]
        return rows

    def check_fence(self, action: Callable[[], str]) -> None:
        """Raises :class:`FenceLost` if this execution's fence is known lost (no round
        trip): it must not run a step that another execution may be running."""
        if self.fenced:
            self._fence.check(self._epoch, action)

    def record_step(self, step: StepRecord) -> str | None:
        """Writes a step's checkpoint (one INSERT, or an upsert after a retry).

        Returns:
            The workflow's status at that moment (CANCELLED means: stop here), or None
            if the checkpoint was already complete.
        """
        status, recorded = self._checkpoints.record(
            _step_params(self.workflow_uuid, self._owner_token, step),
            lambda: f"recording step {step.function_id} of {self.workflow_uuid}",
        )
        if status is None:
            raise FenceLost(
                f"Workflow {self.workflow_uuid} belongs to another execution now (this one "
                f"lost its fence): step {step.function_id} was not recorded"
            )
        return status if recorded else None

    # -- messages, events, streams (each one round trip, with its checkpoint) ---------

    def send_message(
        self, destination: str, topic: str, message_uuid: str, message: str, function_id: int
    ) -> Sent:
        """Sends a message from workflow code; the send and its checkpoint commit together."""
        row = self._send(
            lambda: f"sending a message from {self.workflow_uuid} to {destination}",
            messaging.SEND_MESSAGE_SQL,
            {
                "destination": destination,
                "topic": topic,
                "message_uuid": message_uuid,
                "message": message,
                "now": now_epoch_ms(),
                "sender": self.workflow_uuid,
                "sender_function_id": function_id,
            },
        )
        assert row is not None
        return sent_from_row(row)

    def receive(
        self, *, function_id: int, topic: str, deadline_function_id: int, deadline: str
    ) -> Received:
        """Takes the oldest message of ``topic``, checkpointed (see ``RECV_MESSAGE``)."""
        row = self._send(
            lambda: f"receiving a message in {self.workflow_uuid}",
            messaging.RECV_MESSAGE_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "topic": topic,
                "deadline_function_id": deadline_function_id,
                "deadline": deadline,
                "now": now_epoch_ms(),
            },
        )
        assert row is not None
        return Received(found=bool(row[1]), value=row[0], workflow_status=row[2])

    def get_event(
        self, *, function_id: int, target: str, key: str, deadline_function_id: int, deadline: str
    ) -> Received:
        """Reads another workflow's event, checkpointed if set (``GET_EVENT_IN_WORKFLOW``)."""
        row = self._send(
            lambda: f"reading event {key!r} of {target} in {self.workflow_uuid}",
            messaging.GET_EVENT_IN_WORKFLOW_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "target": target,
                "key": key,
                "deadline_function_id": deadline_function_id,
                "deadline": deadline,
                "now": now_epoch_ms(),
            },
        )
        assert row is not None
        return Received(found=bool(row[1]), value=row[0], workflow_status=row[2])

    def set_event(self, *, function_id: int, key: str, value: str, record: bool) -> list[Woken]:
        """Sets an event of this workflow (checkpointed when ``record``: in workflow code;
        a step's is part of the step). Returns the workflows waiting for it."""
        rows = self._send_all(
            lambda: f"setting event {key!r} of {self.workflow_uuid}",
            messaging.SET_EVENT_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "key": key,
                "value": value,
                "now": now_epoch_ms(),
                "record": record,
            },
        )
        return [
            Woken(
                workflow_uuid=row[1],
                dispatch=Dispatch(name=row[2], queue_name=row[3], generation=row[4]),
            )
            for row in rows
            if row[0] == "woken"
        ]

    def write_stream(
        self, *, key: str, value: str, function_id: int, record_name: str | None
    ) -> int | None:
        """Appends to a stream of this workflow; returns the offset (None: a replay)."""
        row = self._send(
            lambda: f"writing stream {key!r} of {self.workflow_uuid}",
            messaging.WRITE_STREAM_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "key": key,
                "value": value,
                "function_id": function_id,
                "now": now_epoch_ms(),
                "record_name": record_name,
            },
        )
        return None if row is None or row[0] is None else int(row[0])

    def complete(self, status: str, *, output: str | None, error: str | None) -> bool:
        """Records the workflow's outcome and releases the fence.

        Returns:
            False if the workflow was no longer PENDING (for example cancelled), in
            which case nothing was written.
        """
        row = self._send(
            lambda: f"completing workflow {self.workflow_uuid}",
            workflows.COMPLETE_WORKFLOW_SQL,
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
        self._let_go()
        return True

    def reschedule(
        self,
        *,
        due_at_epoch_ms: int,
        parked: bool,
        wait: Wait | None = None,
        checkpoint: StepRecord | None = None,
    ) -> Rescheduled | None:
        """Releases the workflow until ``due_at_epoch_ms`` (sooner if a child woke it, or
        if what it waits for, ``wait``, is already there), writing ``checkpoint`` in the
        same statement if given (see ``RECORD_AND_PARK``). None if the workflow was no
        longer PENDING (nothing to run later) or the checkpoint was not written."""
        params: dict[str, Any] = {
            "workflow_uuid": self.workflow_uuid,
            "due": due_at_epoch_ms,
            "parked": parked,
            "now": now_epoch_ms(),
        }
        statement = workflows.RESCHEDULE_WORKFLOW_SQL
        if checkpoint is not None:
            statement = task_calls.RECORD_AND_PARK_SQL
            params |= _step_params(self.workflow_uuid, self._owner_token, checkpoint)
        elif wait is not None:
            statement = messaging.RESCHEDULE_TO_WAIT_SQL
            params |= {"wait_kind": wait.kind, "target": wait.target, "wait_key": wait.key}
        row = self._send(lambda: f"rescheduling workflow {self.workflow_uuid}", statement, params)
        if row is None:
            self.release()
            return None
        self._let_go()
        generation, due, parked_now = row[:3]
        return Rescheduled(
            generation=int(generation), due_at_epoch_ms=int(due), parked=bool(parked_now)
        )

    def release(self) -> None:
        """Releases the workflow if this execution still owns it (no outcome)."""
        if not self.fenced:
            return
        try:
            params = {"workflow_uuid": self.workflow_uuid, "now": now_epoch_ms()}
            action = lambda: f"releasing workflow {self.workflow_uuid}"  # noqa: E731
            if self._send(action, workflows.RELEASE_WORKFLOW_SQL, params) is None:
                self._send(action, workflows.RELEASE_FENCE_SQL, params)
        finally:
            self._let_go()

    def _let_go(self) -> None:
        """The fence is released (or lost): another execution may claim the workflow."""
        self.fenced = False
        self._fence.let_go(self.workflow_uuid)


def _step_params(workflow_uuid: str, owner_token: int, step: StepRecord) -> dict[str, Any]:
    """A checkpoint's parameters (``RECORD_STEP``'s, ``RECORD_AND_PARK``'s)."""
    return {
        "workflow_uuid": workflow_uuid,
        "owner_token": owner_token,
        # Not dataclasses.asdict: its deep copy was 3-4% of a worker's CPU.
        "function_id": step.function_id,
        "function_name": step.function_name,
        "output": step.output,
        "error": step.error,
        "attempts": step.attempts,
        "attempt_log": step.attempt_log,
        "retry_due_at_epoch_ms": step.retry_due_at_epoch_ms,
        "started_at_epoch_ms": step.started_at_epoch_ms,
        "completed_at_epoch_ms": step.completed_at_epoch_ms,
        "child_workflow_id": step.child_workflow_id,
        "max_attempts": step.max_attempts,
    }


def parse_checkpoints(aggregated: list[list[Any]] | None) -> dict[int, StepRecord]:
    """Parses the ``json_agg`` of ``claim_workflow``: one array per step, its columns
    in ``StepRecord``'s field order."""
    records = (
        StepRecord(**dict(zip(_STEP_FIELDS, columns, strict=True))) for columns in aggregated or ()
    )
    return {record.function_id: record for record in records}


# The columns the claim returns per checkpoint (not max_attempts: replay needs no budget).
_STEP_FIELDS = tuple(
    field.name for field in dataclasses.fields(StepRecord) if field.name != "max_attempts"
)


def sent_from_row(row: Any) -> Sent:
    """``send_message``'s row: (outcome, name, queue_name, generation, sender_status)."""
    outcome, name, queue_name, generation, sender_status = tuple(row)
    wake = None
    if name is not None:
        wake = Dispatch(name=name, queue_name=queue_name, generation=generation)
    return Sent(outcome=outcome, wake=wake, sender_status=sender_status)
