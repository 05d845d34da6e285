"""The ``DBOS`` facade's workflow listings (a part of ``DBOS``).

``list_workflows`` and ``list_queued_workflows`` with DBOS 3.4's keyword parameters,
each spelled out so that a misspelt filter is a ``TypeError``, never a silent "every
workflow"; the configured service turns them into one parameterized query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.core.records import WorkflowStatus
from celery_durable.service.inspection import filters_of


class WorkflowListing(ConfiguredFacade):
    """``list_workflows``, ``list_queued_workflows`` and their ``_async`` twins on ``DBOS``."""

    @classmethod
    def list_workflows(
        cls,
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
        """Workflows matching every given filter, oldest first (``sort_desc``: newest
        first), as DBOS 3.4's. A filter given as a list matches any of its values.
        The Workflows page (Listing workflows) describes each filter."""
        return cls._service().reading.list_workflows(filters_of(locals()))

    @classmethod
    async def list_workflows_async(
        cls,
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
        """``list_workflows`` for async callers (the query runs in a thread)."""
        return await cls._service().reading.list_workflows_async(filters_of(locals()))

    @classmethod
    def list_queued_workflows(
        cls,
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
        """Workflows that have a queue and (unless ``status`` is given) are DELAYED,
        ENQUEUED or PENDING, filtered as ``list_workflows``, as DBOS 3.4's."""
        return cls._service().reading.list_workflows(filters_of(locals()), queues_only=True)

    @classmethod
    async def list_queued_workflows_async(
        cls,
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
        """``list_queued_workflows`` for async callers (the query runs in a thread)."""
        return await cls._service().reading.list_workflows_async(
            filters_of(locals()), queues_only=True
        )
