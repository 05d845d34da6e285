"""The ``DBOS`` facade's calls for waiting on, inspecting and managing workflows that
exist (a part of ``DBOS``), with DBOS 3.4's names, parameters and ``_async`` twins.

``shard_key`` is accepted everywhere DBOS 3.4 has it and refused when given: a
celery_durable system database is not sharded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_partition_key, refuse_shard_key


class WorkflowManagementCalls(ConfiguredFacade):
    """``cancel_workflow_async``, ``resume_workflow_async``, ``resume_workflows``,
    ``delete_workflow(s)``, ``cancel_workflows``, ``update_workflow_attributes`` and
    ``set_workflow_delay`` on ``DBOS``."""

    # -- managing ---------------------------------------------------------------------

    @classmethod
    def rewind_workflow(
        cls,
        workflow_id: str,
        *,
        start_step: int | None = None,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandle[Any]:
        """Re-runs a finished workflow from ``start_step`` (default: the first) under
        its own id, as DBOS 3.4 does: its checkpoints and event history from there on
        are dropped, events set there go back to their earlier values, messages it
        consumed there (or has not consumed) are deleted, its streams' close markers
        from there are removed (their values stay), and it is enqueued again (on
        ``queue_name`` and ``application_version`` when given).

        Raises:
            DBOSException: it has not finished (cancel it first).
            DBOSNonExistentWorkflowError: no such workflow."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return cls._service().management.rewind_workflow(
            workflow_id, start_step, application_version, queue_name
        )

    @classmethod
    async def rewind_workflow_async(
        cls,
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
        return await cls._service().management.rewind_workflow_async(
            workflow_id, start_step, application_version, queue_name
        )

    @classmethod
    async def cancel_workflow_async(
        cls, workflow_id: str, *, cancel_children: bool = False, shard_key: str | None = None
    ) -> None:
        """``cancel_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        await asyncio.to_thread(
            cls._service().management.cancel_workflows, [workflow_id], cancel_children
        )

    @classmethod
    async def resume_workflow_async(
        cls, workflow_id: str, *, queue_name: str | None = None, shard_key: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        """``resume_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        (handle,) = await cls._service().management.resume_workflows_async(
            [workflow_id], queue_name
        )
        return handle

    @classmethod
    def resume_workflows(
        cls,
        workflow_ids: list[str],
        *,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> list[WorkflowHandle[Any]]:
        """``resume_workflow`` for each (every id is checked to exist first)."""
        refuse_shard_key(shard_key)
        return cls._service().management.resume_workflows(workflow_ids, queue_name)

    @classmethod
    async def resume_workflows_async(
        cls,
        workflow_ids: list[str],
        *,
        queue_name: str | None = None,
        shard_key: str | None = None,
    ) -> list[WorkflowHandleAsync[Any]]:
        """``resume_workflows`` for async callers."""
        refuse_shard_key(shard_key)
        return await cls._service().management.resume_workflows_async(workflow_ids, queue_name)

    @classmethod
    def delete_workflow(
        cls, workflow_id: str, *, delete_children: bool = False, shard_key: str | None = None
    ) -> None:
        """Deletes the workflow and everything recorded for it (checkpoints, events,
        streams, messages); with ``delete_children``, every workflow it started too.
        Cancel a running workflow first."""
        refuse_shard_key(shard_key)
        cls._service().management.delete_workflows([workflow_id], delete_children)

    @classmethod
    async def delete_workflow_async(
        cls, workflow_id: str, *, delete_children: bool = False, shard_key: str | None = None
    ) -> None:
        """``delete_workflow`` for async callers."""
        await asyncio.to_thread(
            cls.delete_workflow, workflow_id, delete_children=delete_children, shard_key=shard_key
        )

    @classmethod
    def delete_workflows(
        cls,
        workflow_ids: list[str],
        *,
        delete_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``delete_workflow`` for several workflows at once (one statement)."""
        refuse_shard_key(shard_key)
        cls._service().management.delete_workflows(workflow_ids, delete_children)

    @classmethod
    async def delete_workflows_async(
        cls,
        workflow_ids: list[str],
        *,
        delete_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``delete_workflows`` for async callers."""
        await asyncio.to_thread(
            cls.delete_workflows, workflow_ids, delete_children=delete_children, shard_key=shard_key
        )

    @classmethod
    def cancel_workflows(
        cls,
        workflow_ids: list[str],
        *,
        cancel_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``cancel_workflow`` for each; with ``cancel_children``, every workflow they
        started too (recursively)."""
        refuse_shard_key(shard_key)
        cls._service().management.cancel_workflows(workflow_ids, cancel_children)

    @classmethod
    async def cancel_workflows_async(
        cls,
        workflow_ids: list[str],
        *,
        cancel_children: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``cancel_workflows`` for async callers."""
        await asyncio.to_thread(
            cls.cancel_workflows, workflow_ids, cancel_children=cancel_children, shard_key=shard_key
        )

    @classmethod
    def update_workflow_attributes(
        cls,
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
        cls._service().management.update_workflow_attributes(workflow_id, attributes, merge)

    @classmethod
    async def update_workflow_attributes_async(
        cls,
        workflow_id: str,
        attributes: dict[str, Any] | None,
        *,
        merge: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``update_workflow_attributes`` for async callers."""
        await asyncio.to_thread(
            cls.update_workflow_attributes,
            workflow_id,
            attributes,
            merge=merge,
            shard_key=shard_key,
        )

    @classmethod
    def set_workflow_delay(
        cls,
        workflow_id: str,
        *,
        delay_seconds: float | None = None,
        delay_until_epoch_ms: int | None = None,
        shard_key: str | None = None,
    ) -> None:
        """Moves a DELAYED workflow's start to ``delay_seconds`` from now or to
        ``delay_until_epoch_ms`` (one of them); other workflows are left alone."""
        refuse_shard_key(shard_key)
        cls._service().management.set_workflow_delay(
            workflow_id, delay_seconds, delay_until_epoch_ms
        )

    @classmethod
    async def set_workflow_delay_async(
        cls,
        workflow_id: str,
        *,
        delay_seconds: float | None = None,
        delay_until_epoch_ms: int | None = None,
        shard_key: str | None = None,
    ) -> None:
        """``set_workflow_delay`` for async callers."""
        await asyncio.to_thread(
            cls.set_workflow_delay,
            workflow_id,
            delay_seconds=delay_seconds,
            delay_until_epoch_ms=delay_until_epoch_ms,
            shard_key=shard_key,
        )
