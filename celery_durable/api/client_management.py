"""``DBOSClient``'s calls for waiting on and managing workflows, as ``DBOS``'s (DBOS
3.4's names, parameters and ``_async`` twins; ``shard_key`` is refused when given)."""

from __future__ import annotations

import asyncio
from typing import Any

from celery_durable.service import WorkflowService
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import DEFAULT_POLLING_INTERVAL, refuse_shard_key


class ClientManagementCalls:
    """``wait_first``, ``retrieve_workflow_async``, ``delete_workflow(s)``,
    ``cancel_workflows``, ``update_workflow_attributes`` and ``set_workflow_delay`` on
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
        return by_id[self._service.management.wait_first(ids, polling_interval_sec)]

    async def wait_first_async(
        self,
        handles: list[WorkflowHandleAsync[Any]],
        *,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL,
    ) -> WorkflowHandleAsync[Any]:
        """``wait_first`` for async callers."""
        by_id = {handle.workflow_id: handle for handle in handles}
        ids = [handle.workflow_id for handle in handles]
        first = await self._service.management.wait_first_async(ids, polling_interval_sec)
        return by_id[first]

    async def retrieve_workflow_async(
        self, workflow_id: str, *, shard_key: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        """An async handle to an existing workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: no such workflow.
        """
        refuse_shard_key(shard_key)
        return await self._service.management.retrieve_async(workflow_id)

    # -- managing ---------------------------------------------------------------------

    def delete_workflow(
        self, workflow_id: str, *, delete_children: bool = False, shard_key: str | None = None
    ) -> None:
        """Deletes the workflow and everything recorded for it (checkpoints, events,
        streams, messages); with ``delete_children``, every workflow it started too.
        Cancel a running workflow first."""
        refuse_shard_key(shard_key)
        self._service.management.delete_workflows([workflow_id], delete_children)

    async def delete_workflow_async(
        self, workflow_id: str, *, delete_children: bool = False, shard_key: str | None = None
    ) -> None:
        """``delete_workflow`` for async callers."""
        await asyncio.to_thread(
            self.delete_workflow, workflow_id, delete_children=delete_children, shard_key=shard_key
        )

    def delete_workflows(
        self,
        workflow_ids: list[str],
        *,
        delete_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``delete_workflow`` for several workflows at once (one statement)."""
        refuse_shard_key(shard_key)
        self._service.management.delete_workflows(workflow_ids, delete_children)

    async def delete_workflows_async(
        self,
        workflow_ids: list[str],
        *,
        delete_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``delete_workflows`` for async callers."""
        await asyncio.to_thread(
            self.delete_workflows,
            workflow_ids,
            delete_children=delete_children,
            shard_key=shard_key,
        )

    def cancel_workflows(
        self,
        workflow_ids: list[str],
        *,
        cancel_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``cancel_workflow`` for each; with ``cancel_children``, every workflow they
        started too (recursively)."""
        refuse_shard_key(shard_key)
        self._service.management.cancel_workflows(workflow_ids, cancel_children)

    async def cancel_workflows_async(
        self,
        workflow_ids: list[str],
        *,
        cancel_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``cancel_workflows`` for async callers."""
        await asyncio.to_thread(
            self.cancel_workflows,
            workflow_ids,
            cancel_children=cancel_children,
            shard_key=shard_key,
        )

    def update_workflow_attributes(
        self,
        workflow_id: str,
        attributes: dict[str, Any] | None,
        *,
        merge: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """Replaces the workflow's attributes (a JSON object; None clears them), or with
        ``merge`` merges their top-level keys in; ``list_workflows(attributes=...)``
        finds workflows by them."""
        refuse_shard_key(shard_key)
        self._service.management.update_workflow_attributes(workflow_id, attributes, merge)

    async def update_workflow_attributes_async(
        self,
        workflow_id: str,
        attributes: dict[str, Any] | None,
        *,
        merge: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``update_workflow_attributes`` for async callers."""
        await asyncio.to_thread(
            self.update_workflow_attributes,
            workflow_id,
            attributes,
            merge=merge,
            shard_key=shard_key,
        )

    def set_workflow_delay(
        self,
        workflow_id: str,
        *,
        delay_seconds: float | None = None,
        delay_until_epoch_ms: int | None = None,
        shard_key: str | None = None,
    ) -> None:
        """Moves a DELAYED workflow's start to ``delay_seconds`` from now or to
        ``delay_until_epoch_ms`` (one of them); other workflows are left alone."""
        refuse_shard_key(shard_key)
        self._service.management.set_workflow_delay(
            workflow_id, delay_seconds, delay_until_epoch_ms
        )

    async def set_workflow_delay_async(
        self,
        workflow_id: str,
        *,
        delay_seconds: float | None = None,
        delay_until_epoch_ms: int | None = None,
        shard_key: str | None = None,
    ) -> None:
        """``set_workflow_delay`` for async callers."""
        await asyncio.to_thread(
            self.set_workflow_delay,
            workflow_id,
            delay_seconds=delay_seconds,
            delay_until_epoch_ms=delay_until_epoch_ms,
            shard_key=shard_key,
        )
