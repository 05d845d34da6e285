"""The handle of a workflow started as a task of the caller's event loop
(``integration.loop_start``), as DBOS 3.4's task handle: ``get_result`` first waits for
that execution to end, then reads the outcome, so what the execution did on its way out
(a step it cancelled, a cleanup) has happened by then.

A waiter that gives up (cancelled, timed out) leaves the task running: the wait does
not cancel what it waits for.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from celery_durable.core.serialization import Serializer
from celery_durable.engine.context import in_workflow_code
from celery_durable.service.handles import WorkflowHandleAsync
from celery_durable.store import SystemStore

R = TypeVar("R")


class TaskWorkflowHandleAsync(WorkflowHandleAsync[R]):
    """A ``WorkflowHandleAsync`` that also knows the task running the workflow here."""

    def __init__(
        self,
        workflow_id: str,
        store: SystemStore,
        serializer: Serializer,
        task: asyncio.Task[Any],
    ) -> None:
        super().__init__(workflow_id, store, serializer)
        self._task = task

    async def get_result(
        self, timeout: float | None = None, *, polling_interval_sec: float | None = None
    ) -> R:
        task = self._task
        if in_workflow_code() is None and not task.done() and _on_this_loop(task):
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait({task}, timeout=timeout)
            if timeout is not None:
                timeout = max(0.0, timeout - (loop.time() - started))
        return await super().get_result(timeout, polling_interval_sec=polling_interval_sec)


def _on_this_loop(task: asyncio.Task[Any]) -> bool:
    try:
        return task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:
        return False
