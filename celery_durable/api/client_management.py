"""``DBOSClient``'s calls for managing workflows, as ``DBOS``'s (DBOS 3.4's names,
parameters and ``_async`` twins; ``shard_key`` is refused when given)."""

from __future__ import annotations

import asyncio
from typing import Any

from celery_durable.service import WorkflowService
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import (
    refuse_partition_key,
    refuse_shard_key,
)


class ClientManagementCalls:
    """``rewind_workflow``, ``fork_workflow_async``, ``cancel_workflow_async``,
    ``resume_workflow(s)`` twins, ``delete_workflow(s)``, ``cancel_workflows``,
    ``update_workflow_attributes`` and ``set_workflow_delay`` on ``DBOSClient``."""

    _service: WorkflowService

    def rewind_workflow(
        self,
        workflow_id: str,
        *,
        start_step: int | None = None,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.rewind_workflow``."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return self._service.management.rewind_workflow(
            workflow_id, start_step, application_version, queue_name
        )

    async def rewind_workflow_async(
        self,
        workflow_id: str,
        *,
        start_step: int | None = None,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandleAsync[Any]:
        """``rewind_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return await self._service.management.rewind_workflow_async(
            workflow_id, start_step, application_version, queue_name
        )

    async def fork_workflow_async(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandleAsync[Any]:
        """As ``DBOS.fork_workflow_async``."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return await self._service.fork_async(
            workflow_id,
            start_step,
            application_version=application_version,
            queue_name=queue_name,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )

    async def cancel_workflow_async(
        self, workflow_id: str, *, cancel_children: bool = False, shard_key: str | None = None
    ) -> None:
        """``cancel_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        await asyncio.to_thread(
            self._service.management.cancel_workflows, [workflow_id], cancel_children
        )

    async def resume_workflow_async(
        self, workflow_id: str, *, queue_name: str | None = None, shard_key: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        """``resume_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        (handle,) = await self._service.management.resume_workflows_async([workflow_id], queue_name)
        return handle

    def resume_workflows(
        self,
        workflow_ids: list[str],
        *,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> list[WorkflowHandle[Any]]:
        """``resume_workflow`` for each (every id is checked to exist first)."""
        refuse_shard_key(shard_key)
        return self._service.management.resume_workflows(workflow_ids, queue_name)

    async def resume_workflows_async(
        self,
        workflow_ids: list[str],
        *,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> list[WorkflowHandleAsync[Any]]:
        """``resume_workflows`` for async callers."""
        refuse_shard_key(shard_key)
        return await self._service.management.resume_workflows_async(workflow_ids, queue_name)

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
