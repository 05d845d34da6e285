"""``DBOSClient``'s workflow listings, as ``DBOS``'s (DBOS 3.4's keyword parameters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery_durable.core.records import WorkflowStatus
from celery_durable.service import WorkflowService
from celery_durable.service.inspection import filters_of


class ClientListing:
    """``list_workflows``, ``list_queued_workflows`` and their ``_async`` twins on
    ``DBOSClient``."""

    _service: WorkflowService

    def list_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        completed_after: str | dt.datetime | None = None,
        completed_before: str | dt.datetime | None = None,
        dequeued_after: str | dt.datetime | None = None,
        dequeued_before: str | dt.datetime | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        queues_only: bool = False,
        was_forked_from: bool | None = None,
        is_fork: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        schedule_name: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
        shard_key: str | list[str] | None = None,
        parent_shard_key: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """As ``DBOS.list_workflows``."""
        return self._service.reading.list_workflows(filters_of(locals()))

    async def list_workflows_async(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        completed_after: str | dt.datetime | None = None,
        completed_before: str | dt.datetime | None = None,
        dequeued_after: str | dt.datetime | None = None,
        dequeued_before: str | dt.datetime | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        queues_only: bool = False,
        was_forked_from: bool | None = None,
        is_fork: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        schedule_name: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
        shard_key: str | list[str] | None = None,
        parent_shard_key: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """As ``DBOS.list_workflows_async``."""
        return await self._service.reading.list_workflows_async(filters_of(locals()))

    def list_queued_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        completed_after: str | dt.datetime | None = None,
        completed_before: str | dt.datetime | None = None,
        dequeued_after: str | dt.datetime | None = None,
        dequeued_before: str | dt.datetime | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        is_fork: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        application_name: str | list[str] | None = None,
        shard_key: str | list[str] | None = None,
        parent_shard_key: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """As ``DBOS.list_queued_workflows``."""
        return self._service.reading.list_workflows(filters_of(locals()), queues_only=True)

    async def list_queued_workflows_async(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        completed_after: str | dt.datetime | None = None,
        completed_before: str | dt.datetime | None = None,
        dequeued_after: str | dt.datetime | None = None,
        dequeued_before: str | dt.datetime | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        is_fork: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        application_name: str | list[str] | None = None,
        shard_key: str | list[str] | None = None,
        parent_shard_key: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """As ``DBOS.list_queued_workflows_async``."""
        return await self._service.reading.list_workflows_async(
            filters_of(locals()), queues_only=True
        )
