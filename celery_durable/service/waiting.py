"""DBOS 3.4's calls for waiting on and inspecting workflows, each written once for
``DBOS`` and ``DBOSClient`` (the ``_async`` twins run it in a thread).

Outside workflow code they read the store (``store.workflows``, ``store.management``);
in workflow code ``get_result`` is the engine's durable wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from celery_durable.core.outcomes import decode_status
from celery_durable.core.records import WorkflowStatus
from celery_durable.engine import children_and_sleep, first_done, outcome_polling, recorded_calls
from celery_durable.engine.context import in_thread_in_call_order, in_workflow_code
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.integration.runtime import Runtime
from celery_durable.service.handles import WorkflowHandleAsync

# DBOS's DEFAULT_POLLING_INTERVAL, wait_first's default.
DEFAULT_POLLING_INTERVAL = 1.0


class WaitingService:
    """One configuration's waiting and inspecting calls (``service.waiting``)."""

    def __init__(
        self, runtime: Runtime, handle_async: Callable[[str], WorkflowHandleAsync[Any]]
    ) -> None:
        self.runtime = runtime
        self._handle_async = handle_async

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus | None:
        """The workflow's status, None if it does not exist (recorded as DBOS's
        ``DBOS.getStatus`` operation when workflow code asks)."""
        store, serializer = self.runtime.process.store, self.runtime.process.serializer
        return recorded_calls.recorded_status(
            lambda: (
                decode_status(row, serializer)
                if (row := store.workflows.get_workflow(workflow_id)) is not None
                else None
            )
        )

    async def get_workflow_status_async(self, workflow_id: str) -> WorkflowStatus | None:
        return await in_thread_in_call_order(1, lambda: self.get_workflow_status(workflow_id))

    async def retrieve_async(
        self, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandleAsync[Any]:
        """An async handle; with ``existing_workflow``, only to a workflow that exists.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        workflows = self.runtime.process.store.workflows
        if (
            existing_workflow
            and await asyncio.to_thread(workflows.get_outcome, workflow_id) is None
        ):
            raise DBOSNonExistentWorkflowError(workflow_id)
        return self._handle_async(workflow_id)

    def get_result(self, workflow_id: str) -> Any:
        """Waits for the workflow's outcome (one not written yet is waited for, as in
        DBOS); in workflow code, the durable wait of ``WorkflowHandle.get_result``."""
        parent = in_workflow_code()
        if parent is not None:
            return children_and_sleep.await_result(parent, workflow_id)
        process = self.runtime.process
        return outcome_polling.wait_for(
            process.store, process.serializer, workflow_id, wait_for_creation=True
        )

    async def get_result_async(self, workflow_id: str) -> Any:
        parent = in_workflow_code()
        if parent is not None:
            # Its id taken now, in call order; the wait does not block the loop.
            return await children_and_sleep.await_result_async(parent, workflow_id)
        return await asyncio.to_thread(self.get_result, workflow_id)

    def wait_first(self, workflow_ids: Sequence[str], polling_interval_sec: float) -> str:
        """The id of the first of these workflows to finish, polling every
        ``polling_interval_sec`` seconds; in workflow code, recorded as DBOS's
        ``DBOS.waitFirst`` (a replay returns the same id), and under Celery the wait
        frees the worker (``engine.first_done``).

        Raises:
            ValueError: no ids, or one twice (as DBOS).
        """
        _check_ids(workflow_ids)
        management = self.runtime.process.store.management
        ids = list(workflow_ids)
        workflow = in_workflow_code()
        if workflow is not None:
            return first_done.wait_first(
                workflow, ids, lambda: management.first_finished(ids), polling_interval_sec
            )
        while (first := management.first_finished(ids)) is None:
            time.sleep(polling_interval_sec)
        return first

    async def wait_first_async(
        self, workflow_ids: Sequence[str], polling_interval_sec: float
    ) -> str:
        workflow = in_workflow_code()
        if workflow is None:
            return await asyncio.to_thread(self.wait_first, workflow_ids, polling_interval_sec)
        _check_ids(workflow_ids)
        management = self.runtime.process.store.management
        ids = list(workflow_ids)
        return await first_done.wait_first_async(
            workflow, ids, lambda: management.first_finished(ids), polling_interval_sec
        )


def _check_ids(workflow_ids: Sequence[str]) -> None:
    """As DBOS: at least one id, none twice."""
    if not workflow_ids:
        raise ValueError("handles must not be empty")
    if len(set(workflow_ids)) != len(workflow_ids):
        raise ValueError("handles must not contain duplicate workflow IDs")


async def asyncio_wait(
    fs: list[Awaitable[Any]], timeout: float | None, return_when: str
) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
    """``asyncio.wait`` over these awaitables (DBOS's ``asyncio_wait``); in workflow
    code, which ones were done is recorded as the operation ``DBOS.asyncio_wait`` and
    a replay returns the same (``engine.first_done``)."""
    workflow = in_workflow_code()
    if workflow is not None:
        # ensure_future makes a Task of each awaitable that is not already a future.
        return cast(
            "tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]",
            await first_done.asyncio_wait(workflow, fs, timeout, return_when),
        )
    tasks = [asyncio.ensure_future(f) for f in fs]
    return cast(
        "tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]",
        await asyncio.wait(tasks, timeout=timeout, return_when=return_when),
    )
