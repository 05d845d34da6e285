"""One execution of one workflow: its statements, fenced (its messages, events and
streams are :mod:`~celery_durable.store.execution_messages`'s)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, Wait
from celery_durable.store.execution_messages import ExecutionMessages
from celery_durable.store.fence import Fence, FencedStatements, FenceLost, StatementListener
from celery_durable.store.group_commit import GroupCommit
from celery_durable.store.rows import (
    Claim,
    Rescheduled,
)
from celery_durable.store.sql import messaging, task_calls, workflows

__all__ = ["StatementListener", "WorkflowExecution"]


class WorkflowExecution:
    """One execution of one workflow: it holds the workflow's fence.

    The fence (an advisory lock) is on the process's :class:`Fence` connection: the
    claim took it there, and the statements that end the execution (outcome,
    reschedule, release) run there and let go of it in the same statement. So do the
    messaging statements (``messages``, an :class:`ExecutionMessages`), which are rare.
    A step's checkpoint, the per-step hot path, goes through the process's
    :class:`GroupCommit` instead (a pooled connection for its one statement, shared
    with the checkpoints of other executions that wait at the same moment), conditional
    on the claim's ``owner_token``: an execution whose fence died (and whose workflow
    another execution then claimed) cannot write. Statements run in autocommit mode,
    each its own transaction, straight on the driver (SQLAlchemy's execution machinery
    would cost a sixth of a statement's round trip).
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
        self._statements = FencedStatements(fence, epoch)
        self._checkpoints = checkpoints
        self._owner_token = owner_token
        self.workflow_uuid = workflow_uuid
        self.claim = claim
        self.fenced = claim.outcome == "claimed"
        self.in_canvas = False
        self.messages = ExecutionMessages(self._statements, workflow_uuid)

    def check_fence(self, action: Callable[[], str]) -> None:
        """Raises :class:`FenceLost` if this execution's fence is known lost (no round
        trip): it must not run a step that another execution may be running."""
        if self.fenced:
            self._statements.check(action)

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

    def complete(self, status: str, *, output: str | None, error: str | None) -> bool:
        """Records the workflow's outcome and releases the fence.

        Returns:
            False if the workflow was no longer PENDING (for example cancelled), in
            which case nothing was written.
        """
        row = self._statements.one(
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
        self.in_canvas = bool(row[1])
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
        row = self._statements.one(
            lambda: f"rescheduling workflow {self.workflow_uuid}", statement, params
        )
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
            if self._statements.one(action, workflows.RELEASE_WORKFLOW_SQL, params) is None:
                self._statements.one(action, workflows.RELEASE_FENCE_SQL, params)
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
