"""Workflow handles: wait for a workflow's outcome and read its status."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Generic, TypeVar

from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSNonExistentWorkflowError,
    DBOSSystemDatabaseError,
    DBOSWorkflowMaxRecoveryAttemptsExceededError,
)
from celery_durable.records import RawWorkflowRow, WorkflowStatus, WorkflowStatusString
from celery_durable.serialization import Serializer
from celery_durable.store import SystemStore

R = TypeVar("R")

# get_result polls the workflow's row: quickly at first, then at most this often.
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.25


class _Outcome:
    """Reads a workflow's outcome; shared by the sync and async handles."""

    def __init__(self, workflow_id: str, store: SystemStore, serializer: Serializer) -> None:
        self.workflow_id = workflow_id
        self.store = store
        self.serializer = serializer

    def poll(self) -> tuple[bool, Any]:
        """``(True, output)`` once the workflow is SUCCESS; raises its failure."""
        row = self.store.get_outcome(self.workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(self.workflow_id)
        _, status, output, error = row
        return decode_outcome(self.workflow_id, status, output, error, self.serializer)

    def timeout_error(self, timeout: float) -> TimeoutError:
        return TimeoutError(f"Workflow {self.workflow_id} did not finish within {timeout}s")

    def status(self) -> WorkflowStatus:
        row = self.store.get_workflow(self.workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(self.workflow_id)
        return decode_status(row, self.serializer)


class WorkflowHandle(Generic[R]):
    """A started workflow, as ``DBOS.start_workflow`` returns it."""

    def __init__(self, workflow_id: str, store: SystemStore, serializer: Serializer) -> None:
        self._outcome = _Outcome(workflow_id, store, serializer)

    @property
    def workflow_id(self) -> str:
        return self._outcome.workflow_id

    def get_workflow_id(self) -> str:
        return self._outcome.workflow_id

    def get_result(self, timeout: float | None = None) -> R:
        """Waits for the workflow to finish and returns its output.

        Inside a workflow's code this is a durable wait: the result is checkpointed,
        and under Celery the worker is free while the awaited workflow runs.

        Raises:
            Exception: the workflow's own error, if it ended in ERROR.
            DBOSAwaitedWorkflowCancelledError: the workflow was cancelled.
            TimeoutError: ``timeout`` seconds passed first (the workflow goes on).
        """
        from celery_durable import children
        from celery_durable.dbos import DBOS

        parent = children.in_workflow_code()
        if parent is not None:
            result: R = children.await_result(DBOS._runtime(), parent, self.workflow_id)
            return result
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> R:
        """Polls the workflow's row until it finishes (``get_result`` outside a workflow)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_SECONDS
        first = True
        while True:
            try:
                done, output = self._outcome.poll()
            except DBOSSystemDatabaseError:
                if first:
                    raise
                # A database restart while waiting: keep waiting (and polling).
                done, output = False, None
            first = False
            if done:
                return output  # type: ignore[no-any-return]
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._outcome.timeout_error(timeout or 0.0)
                delay = min(delay, remaining)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL_SECONDS)

    def get_status(self) -> WorkflowStatus:
        return self._outcome.status()


class WorkflowHandleAsync(Generic[R]):
    """The ``async`` counterpart of :class:`WorkflowHandle`."""

    def __init__(self, workflow_id: str, store: SystemStore, serializer: Serializer) -> None:
        self._outcome = _Outcome(workflow_id, store, serializer)

    @property
    def workflow_id(self) -> str:
        return self._outcome.workflow_id

    def get_workflow_id(self) -> str:
        return self._outcome.workflow_id

    async def get_result(self, timeout: float | None = None) -> R:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = _FIRST_POLL_SECONDS
        while True:
            done, output = await asyncio.to_thread(self._outcome.poll)
            if done:
                return output  # type: ignore[no-any-return]
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._outcome.timeout_error(timeout or 0.0)
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_POLL_SECONDS)

    async def get_status(self) -> WorkflowStatus:
        return await asyncio.to_thread(self._outcome.status)


def decode_outcome(
    workflow_id: str, status: str, output: str | None, error: str | None, serializer: Serializer
) -> tuple[bool, Any]:
    """``(True, output)`` for SUCCESS, ``(False, None)`` while running; raises failures."""
    if status == WorkflowStatusString.SUCCESS:
        return True, None if output is None else serializer.loads(output)
    if status == WorkflowStatusString.ERROR:
        if error is None:
            raise RuntimeError(f"Workflow {workflow_id} failed without a recorded error")
        raise serializer.loads(error)
    if status == WorkflowStatusString.CANCELLED:
        raise DBOSAwaitedWorkflowCancelledError(workflow_id)
    if status == WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        raise DBOSWorkflowMaxRecoveryAttemptsExceededError(workflow_id)
    return False, None


def decode_status(row: RawWorkflowRow, serializer: Serializer) -> WorkflowStatus:
    """Turns a stored row into the public record, decoding its serialized columns."""
    return WorkflowStatus(
        workflow_id=row.workflow_uuid,
        status=row.status,
        name=row.name,
        queue_name=row.queue_name,
        input=serializer.loads(row.inputs),
        output=None if row.output is None else serializer.loads(row.output),
        error=None if row.error is None else serializer.loads(row.error),
        authenticated_user=row.authenticated_user,
        executor_id=row.executor_id,
        recovery_attempts=row.recovery_attempts,
        max_recovery_attempts=row.max_recovery_attempts,
        created_at=row.created_at_epoch_ms,
        updated_at=row.updated_at_epoch_ms,
        started_at_epoch_ms=row.started_at_epoch_ms,
        completed_at_epoch_ms=row.completed_at_epoch_ms,
        parent_workflow_id=row.parent_workflow_id,
        deduplication_id=row.deduplication_id,
        priority=row.priority,
    )
