"""Claiming a workflow for one execution (the hot path's first round trip), and waking
a parent once a child's execution has ended."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store.connections import Connections
from celery_durable.store.driver_errors import violates
from celery_durable.store.execution import WorkflowExecution, parse_checkpoints
from celery_durable.store.fence import FenceLost
from celery_durable.store.rows import Claim, Dispatch, NewWorkflow, ReportedOutcome
from celery_durable.store.sql import operations, task_calls, workflows
from celery_durable.store.workflow_store import (
    WorkflowStore,
    conflict,
    deduplicated,
    new_workflow_params,
)


class ExecutionStore:
    """Executions of workflows: each claims its workflow's fence (an advisory lock on
    the process's fence connection) and writes through a :class:`WorkflowExecution`."""

    def __init__(self, connections: Connections, workflows: WorkflowStore) -> None:
        self._connections = connections
        self._workflows = workflows

    @contextlib.contextmanager
    def claim(
        self,
        workflow_uuid: str,
        executor_id: str,
        *,
        generation: int | None = None,
        max_recovery_attempts: int | None = None,
        new: NewWorkflow | None = None,
        app_version: str | None = None,
        version_live_ms: int = 0,
        reported: ReportedOutcome | None = None,
    ) -> Iterator[WorkflowExecution]:
        """Claims a workflow and yields its execution; the fence is released on exit.
        Claiming, loading the inputs and loading every checkpoint is one round trip.

        Args:
            generation: The delivery's dispatch generation (Celery's ``retries``);
                None for an in-process call.
            max_recovery_attempts: The workflow code's limit (None: the row's).
            new: A direct call's workflow (status PENDING): its row is inserted, unless
                one has its id, in the same round trip as the claim. A finished
                workflow's claim then carries its recorded outcome.
            app_version: The claimer's application version: a workflow of another is
                not claimed (outcome ``version``); one of none is stamped with it.
            version_live_ms: A version whose workers swept within this long is running
                (0: none counts as running; unused without ``app_version``).
            reported: A Celery task's outcome recorded first, in the same round trip
                (``claim_after_task``): claimed only if that woke the workflow.

        Raises:
            DBOSConflictingWorkflowError: ``new``'s id belongs to a workflow of another
                name (nothing was claimed).
        """
        params: dict[str, Any] = {
            "workflow_uuid": workflow_uuid,
            "executor_id": executor_id,
            "now": now_epoch_ms(),
            "generation": generation,
            "max_recovery_attempts": max_recovery_attempts,
            "app_version": app_version,
            "live_ms": version_live_ms,
            "owner_token": secrets.randbits(63),
        }
        new = self._insert_unless_combinable(new)
        fence = self._connections.fence
        if not fence.hold(workflow_uuid, _HOLDER_WAIT_SECONDS):
            # Another execution of this process holds it (see _HOLDER_WAIT_SECONDS).
            busy = _BUSY if reported is None else self._record_only(workflow_uuid, reported)
            yield self._execution(workflow_uuid, busy, fence.epoch, params)
            return
        if reported is not None:
            params |= _reported_params(reported)
        epoch, claim = self._claim(workflow_uuid, params, new, reported is not None)
        execution = self._execution(workflow_uuid, claim, epoch, params)
        if not execution.fenced:
            fence.let_go(workflow_uuid)
        try:
            yield execution
        finally:
            self._release(execution, epoch)

    def _insert_unless_combinable(self, new: NewWorkflow | None) -> NewWorkflow | None:
        """A direct call's row is inserted by the claim's round trip, unless executions
        commit asynchronously (a workflow's creation never does) or the row carries what
        the combined call does not (a timeout, roles): then it is inserted here first."""
        if new is not None and (
            not self._connections.synchronous_checkpoints
            or new.workflow_timeout_ms is not None
            or new.authenticated_roles is not None
            or new.assumed_role is not None
        ):
            self._workflows.insert_workflow(new)
            return None
        return new

    def _release(self, execution: WorkflowExecution, epoch: int) -> None:
        try:
            execution.release()
        except FenceLost:
            pass  # the lock went with the lost connection
        except DBOSSystemDatabaseError:
            # A lock must not outlive its execution: dropping the connection lets go of
            # it (and of this process's others, whose executions then find their fence
            # lost and run again from their checkpoints).
            self._connections.fence.abandon(epoch)

    def _execution(
        self, workflow_uuid: str, claim: Claim, epoch: int, params: dict[str, Any]
    ) -> WorkflowExecution:
        return WorkflowExecution(
            self._connections.fence,
            self._connections.checkpoints,
            workflow_uuid,
            claim,
            epoch=epoch,
            owner_token=params["owner_token"],
        )

    def _record_only(self, workflow_uuid: str, reported: ReportedOutcome) -> Claim:
        """A task's outcome recorded without a claim (an execution of this process
        holds the workflow): ``busy`` with the woken dispatch, if it woke it."""
        params = {"workflow_uuid": workflow_uuid, "now": now_epoch_ms()}
        params |= _reported_params(reported)
        params["succeeded"] = reported.error is None
        sql = task_calls.RECORD_TASK_OUTCOME_SQL
        for listener in self._connections.statement_listeners:
            listener(sql)
        action = lambda: f"recording task {reported.task_id}"  # noqa: E731
        with self._connections.statements.cursor(action) as cursor:
            cursor.execute(sql, params)
            recorded, name, queue_name, generation, publish = cursor.fetchone()
        if not recorded:
            return replace(_BUSY, outcome="unrecorded")
        if not publish:
            return replace(_BUSY, outcome="recorded")
        return replace(
            _BUSY, woken=Dispatch(name=name, queue_name=queue_name, generation=generation)
        )

    def _claim(
        self,
        workflow_uuid: str,
        params: dict[str, Any],
        new: NewWorkflow | None,
        after_task: bool = False,
    ) -> tuple[int, Claim]:
        """Sends the claim (or a direct call's insert-and-claim) on the fence connection,
        where it takes the workflow's lock; returns the fence's epoch and the claim.
        The caller holds the workflow in the fence (``Fence.hold``) and lets go of it
        if nothing was claimed."""
        fence = self._connections.fence
        sql = task_calls.CLAIM_AFTER_TASK_SQL if after_task else workflows.CLAIM_WORKFLOW_SQL
        if new is not None:
            sql = workflows.CALL_WORKFLOW_SQL
            params = params | new_workflow_params(new)
        try:
            for attempt in (1, 2):
                before = fence.epoch
                try:
                    epoch, row = fence.send(
                        lambda: f"claiming workflow {workflow_uuid}", sql, params
                    )
                    break
                except DBOSSystemDatabaseError as error:
                    if attempt == 1 and fence.epoch != before:
                        fence.hold(workflow_uuid)  # the lost connection's holds were cleared
                        continue  # a connection that died with a server restart
                    if new is not None and violates(error, "deduplication_idx"):
                        raise deduplicated(new) from error
                    raise
        except BaseException:
            fence.let_go(workflow_uuid)
            raise
        columns = _CALL_COLUMNS if new is not None else _CLAIM_COLUMNS
        if after_task:
            columns = _AFTER_TASK_COLUMNS
        found = dict(zip(columns, row, strict=True))
        if found["outcome"] == "conflict":
            assert new is not None
            fence.let_go(workflow_uuid)
            raise conflict(workflow_uuid, found["name"], new.name)
        return epoch, _claim_of(found, direct_call=new is not None)

    def wake_parent(self, parent_uuid: str) -> Dispatch | None:
        """After a child finished: the parent's dispatch, if it must be published."""
        row = self._connections.run(
            f"waking workflow {parent_uuid}",
            lambda connection: connection.execute(
                operations.WAKE_PARENT, {"workflow_uuid": parent_uuid, "now": now_epoch_ms()}
            ).first(),
        )
        if row is None or not row.publish:
            return None
        return Dispatch(
            name=row.name, queue_name=row.queue_name, generation=row.dispatch_generation
        )


def _claim_of(found: dict[str, Any], *, direct_call: bool) -> Claim:
    """The claim a row of ``claim_workflow`` (or ``call_workflow``) describes."""
    return Claim(
        outcome=found["outcome"],
        name=found["name"],
        status=found["status"],
        inputs=found["inputs"],
        authenticated_user=found["authenticated_user"],
        checkpoints=parse_checkpoints(found["checkpoints"]),
        wait_ms=found["wait_ms"],
        parent_workflow_id=found["parent_workflow_id"],
        recorded=(
            (found["output"], found["error"])
            if direct_call and found["outcome"] == "finished"
            else None
        ),
        app_version=found["app_version"],
        woken=(
            Dispatch(
                name=found["woken_name"],
                queue_name=found["woken_queue"],
                generation=found["woken_generation"],
            )
            if found.get("woken_name") is not None
            else None
        ),
    )


def _reported_params(reported: ReportedOutcome) -> dict[str, Any]:
    return {
        "function_id": reported.function_id,
        "task_id": reported.task_id,
        "output": reported.output,
        "error": reported.error,
    }


# How long a delivery waits for another execution of this process (a duplicate
# delivery) to let go of the workflow before it counts as ``busy``. A holder that only
# claims (a delivery of an older generation, which finds itself stale) lets go within
# a round trip: the wait keeps the current generation's delivery from being dropped
# beside it, and the workflow from being left ENQUEUED by both.
_HOLDER_WAIT_SECONDS = 2.0

# What an execution sees when another execution of this process holds the workflow.
_BUSY = Claim(
    outcome="busy",
    name=None,
    status=None,
    inputs=None,
    authenticated_user=None,
    checkpoints={},
)
_CLAIM_COLUMNS = (
    "outcome",
    "name",
    "status",
    "inputs",
    "authenticated_user",
    "checkpoints",
    "wait_ms",
    "parent_workflow_id",
    "app_version",
)
_CALL_COLUMNS = (*_CLAIM_COLUMNS, "inserted", "output", "error")
_AFTER_TASK_COLUMNS = (*_CLAIM_COLUMNS, "woken_name", "woken_queue", "woken_generation")
