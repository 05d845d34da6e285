"""Workflow handles: wait for a workflow's outcome and read its status."""

from __future__ import annotations

from typing import Generic, TypeVar

from celery_durable.core.outcomes import decode_status
from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import Serializer
from celery_durable.engine import children_and_sleep, outcome_polling, recorded_calls
from celery_durable.engine.context import in_thread_in_call_order, in_workflow_code
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.store import SystemStore

R = TypeVar("R")


class _HandleBase:
    def __init__(self, workflow_id: str, store: SystemStore, serializer: Serializer) -> None:
        self._workflow_id = workflow_id
        self._store = store
        self._serializer = serializer

    @property
    def workflow_id(self) -> str:
        return self._workflow_id

    def get_workflow_id(self) -> str:
        return self._workflow_id

    def _status(self) -> WorkflowStatus:
        """Recorded as DBOS's ``DBOS.getStatus`` operation when workflow code asks."""
        return recorded_calls.call_recorded(
            recorded_calls.GET_STATUS_NAME,
            self._read_status,
            recorded_calls.encode_status,
            recorded_calls.decode_existing_status,
        )

    def _read_status(self) -> WorkflowStatus:
        row = self._store.workflows.get_workflow(self._workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(self._workflow_id)
        return decode_status(row, self._serializer)


class WorkflowHandle(_HandleBase, Generic[R]):
    """A started workflow, as ``DBOS.start_workflow`` returns it."""

    def get_result(
        self, timeout: float | None = None, *, polling_interval_sec: float | None = None
    ) -> R:
        """Waits for the workflow to finish and returns its output.

        Inside a workflow's code this is a durable wait: the result is checkpointed,
        and under Celery the worker is free while the awaited workflow runs. Elsewhere
        it polls the workflow's row, from every 5 ms backing off to every 250 ms, or to
        every ``polling_interval_sec`` seconds when given (DBOS's parameter).

        Raises:
            Exception: the workflow's own error, if it ended in ERROR.
            DBOSAwaitedWorkflowCancelledError: the workflow was cancelled.
            TimeoutError: ``timeout`` seconds passed first (the workflow goes on).
        """
        parent = in_workflow_code()
        if parent is not None:
            result: R = children_and_sleep.await_result(parent, self._workflow_id)
            return result
        output: R = outcome_polling.wait_for(
            self._store,
            self._serializer,
            self._workflow_id,
            timeout,
            max_poll_seconds=polling_interval_sec,
        )
        return output

    def get_status(self) -> WorkflowStatus:
        return self._status()


class WorkflowHandleAsync(_HandleBase, Generic[R]):
    """The ``async`` counterpart of [WorkflowHandle][celery_durable.WorkflowHandle]."""

    async def get_result(
        self, timeout: float | None = None, *, polling_interval_sec: float | None = None
    ) -> R:
        """As [WorkflowHandle.get_result][celery_durable.WorkflowHandle.get_result];
        inside an ``async def`` workflow it is the same durable wait, which frees the
        worker under Celery."""
        parent = in_workflow_code()
        if parent is not None:
            result: R = await children_and_sleep.await_result_async(parent, self._workflow_id)
            return result
        output: R = await outcome_polling.wait_for_async(
            self._store,
            self._serializer,
            self._workflow_id,
            timeout,
            max_poll_seconds=polling_interval_sec,
        )
        return output

    async def get_status(self) -> WorkflowStatus:
        return await in_thread_in_call_order(1, self._status)
