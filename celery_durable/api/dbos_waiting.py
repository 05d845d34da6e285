"""The ``DBOS`` facade's calls for waiting on and inspecting workflows (a part of
``DBOS``), with DBOS 3.4's names, parameters and ``_async`` twins.

``shard_key`` is accepted everywhere DBOS 3.4 has it and refused when given: a
celery_durable system database is not sharded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.core.records import StepInfo, WorkflowStatus
from celery_durable.service import waiting
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_shard_key
from celery_durable.service.waiting import DEFAULT_POLLING_INTERVAL


class WorkflowWaiting(ConfiguredFacade):
    """``get_workflow_status``, ``get_result``, ``wait_first``, ``asyncio_wait``,
    ``retrieve_workflow_async`` and ``list_workflow_steps_async`` on ``DBOS``."""

    # -- waiting and inspecting -------------------------------------------------------

    @classmethod
    def get_workflow_status(
        cls, workflow_id: str, *, shard_key: str | None = None
    ) -> WorkflowStatus | None:
        """The workflow's status; None if it does not exist."""
        refuse_shard_key(shard_key)
        return cls._service().waiting.get_workflow_status(workflow_id)

    @classmethod
    async def get_workflow_status_async(
        cls, workflow_id: str, *, shard_key: str | None = None
    ) -> WorkflowStatus | None:
        """``get_workflow_status`` for async callers (the read runs in a thread)."""
        refuse_shard_key(shard_key)
        return await cls._service().waiting.get_workflow_status_async(workflow_id)

    @classmethod
    def get_result(cls, workflow_id: str, *, shard_key: str | None = None) -> Any | None:
        """Waits for the workflow to finish and returns its output (or raises its error);
        a workflow not written yet is waited for. In workflow code it is the durable
        wait of ``WorkflowHandle.get_result``."""
        refuse_shard_key(shard_key)
        return cls._service().waiting.get_result(workflow_id)

    @classmethod
    async def get_result_async(
        cls, workflow_id: str, *, shard_key: str | None = None
    ) -> Any | None:
        """``get_result`` for async callers."""
        refuse_shard_key(shard_key)
        return await cls._service().waiting.get_result_async(workflow_id)

    @classmethod
    def wait_first(
        cls,
        handles: list[WorkflowHandle[Any]],
        *,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL,
    ) -> WorkflowHandle[Any]:
        """Waits until one of the workflows has finished and returns its handle (polling
        every ``polling_interval_sec`` seconds). In workflow code the answer is recorded
        (as DBOS's ``DBOS.waitFirst``) and the wait frees the worker."""
        by_id = {handle.workflow_id: handle for handle in handles}
        ids = [handle.workflow_id for handle in handles]
        return by_id[cls._service().waiting.wait_first(ids, polling_interval_sec)]

    @classmethod
    async def wait_first_async(
        cls,
        handles: list[WorkflowHandleAsync[Any]],
        *,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL,
    ) -> WorkflowHandleAsync[Any]:
        """``wait_first`` for async callers."""
        by_id = {handle.workflow_id: handle for handle in handles}
        ids = [handle.workflow_id for handle in handles]
        first = await cls._service().waiting.wait_first_async(ids, polling_interval_sec)
        return by_id[first]

    @classmethod
    async def asyncio_wait(
        cls,
        fs: list[Awaitable[Any]],
        *,
        timeout: float | None = None,
        return_when: str = asyncio.ALL_COMPLETED,
    ) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
        """``asyncio.wait``; in workflow code, which awaitables were done is recorded (as
        DBOS's ``DBOS.asyncio_wait``) and a replay returns the same."""
        return await waiting.asyncio_wait(fs, timeout, return_when)

    @classmethod
    async def retrieve_workflow_async(
        cls, workflow_id: str, existing_workflow: bool = True, *, shard_key: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        """An async handle to a workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        refuse_shard_key(shard_key)
        return await cls._service().waiting.retrieve_async(workflow_id, existing_workflow)

    @classmethod
    async def list_workflow_steps_async(
        cls,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
        shard_key: str | None = None,
    ) -> list[StepInfo]:
        """``list_workflow_steps`` for async callers (the read runs in a thread)."""
        refuse_shard_key(shard_key)
        return await cls._service().reading.list_workflow_steps_async(
            workflow_id, load_output=load_output, limit=limit, offset=offset
        )
