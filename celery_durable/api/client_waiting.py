"""``DBOSClient``'s calls for waiting on and inspecting workflows, as ``DBOS``'s (DBOS
3.4's names, parameters and ``_async`` twins; ``shard_key`` is refused when given)."""

from __future__ import annotations

from typing import Any

from celery_durable.core.records import StepInfo
from celery_durable.service import WorkflowService
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_shard_key
from celery_durable.service.waiting import DEFAULT_POLLING_INTERVAL


class ClientWaiting:
    """``wait_first``, ``retrieve_workflow_async`` and ``list_workflow_steps_async`` on
    ``DBOSClient``."""

    _service: WorkflowService

    def wait_first(
        self,
        handles: list[WorkflowHandle[Any]],
        *,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL,
    ) -> WorkflowHandle[Any]:
        """Waits until one of the workflows has finished and returns its handle (polling
        every ``polling_interval_sec`` seconds). Not in workflow code yet: it raises
        ``DBOSException`` there."""
        by_id = {handle.workflow_id: handle for handle in handles}
        ids = [handle.workflow_id for handle in handles]
        return by_id[self._service.waiting.wait_first(ids, polling_interval_sec)]

    async def wait_first_async(
        self,
        handles: list[WorkflowHandleAsync[Any]],
        *,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL,
    ) -> WorkflowHandleAsync[Any]:
        """``wait_first`` for async callers."""
        by_id = {handle.workflow_id: handle for handle in handles}
        ids = [handle.workflow_id for handle in handles]
        first = await self._service.waiting.wait_first_async(ids, polling_interval_sec)
        return by_id[first]

    async def retrieve_workflow_async(
        self, workflow_id: str, *, shard_key: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        """An async handle to an existing workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: no such workflow.
        """
        refuse_shard_key(shard_key)
        return await self._service.waiting.retrieve_async(workflow_id)

    async def list_workflow_steps_async(
        self,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
        shard_key: str | None = None,
    ) -> list[StepInfo]:
        """``list_workflow_steps`` for async callers (the read runs in a thread)."""
        refuse_shard_key(shard_key)
        return await self._service.reading.list_workflow_steps_async(
            workflow_id, load_output=load_output, limit=limit, offset=offset
        )
