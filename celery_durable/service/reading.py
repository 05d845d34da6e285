"""The workflow and step listings (``list_workflows``, ``list_queued_workflows``,
``list_workflow_steps``) for both facades, each with its ``_async`` twin. Called from
workflow code, each is recorded as an operation, as DBOS records it
(engine/recorded_calls.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery_durable.core.records import StepInfo, WorkflowStatus
from celery_durable.engine import recorded_calls
from celery_durable.engine.context import in_thread_in_call_order
from celery_durable.engine.recorded_calls import (
    LIST_QUEUED_WORKFLOWS_NAME,
    LIST_STEPS_NAME,
    LIST_WORKFLOWS_NAME,
)
from celery_durable.integration.runtime import Runtime
from celery_durable.service import inspection


class WorkflowReading:
    """One configuration's listings (``service.reading``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def list_workflows(
        self, filters: Mapping[str, Any], *, queues_only: bool = False
    ) -> list[WorkflowStatus]:
        """DBOS 3.4's ``list_workflows`` (``queues_only``: ``list_queued_workflows``);
        ``filters`` are its keyword arguments (see ``inspection.workflow_query``)."""
        process = self.runtime.process
        query = inspection.workflow_query(filters, queues_only=queues_only)
        return recorded_calls.call_recorded(
            LIST_QUEUED_WORKFLOWS_NAME if queues_only else LIST_WORKFLOWS_NAME,
            lambda: inspection.list_workflows(process.store, process.serializer, query),
            recorded_calls.encode_statuses,
            recorded_calls.decode_statuses,
        )

    async def list_workflows_async(
        self, filters: Mapping[str, Any], *, queues_only: bool = False
    ) -> list[WorkflowStatus]:
        return await in_thread_in_call_order(
            1, lambda: self.list_workflows(filters, queues_only=queues_only)
        )

    def list_workflow_steps(
        self,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StepInfo]:
        process = self.runtime.process
        return recorded_calls.call_recorded(
            LIST_STEPS_NAME,
            lambda: inspection.list_workflow_steps(
                process.store,
                process.serializer,
                workflow_id,
                load_output=load_output,
                limit=limit,
                offset=offset,
            ),
        )

    async def list_workflow_steps_async(
        self,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StepInfo]:
        return await in_thread_in_call_order(
            1,
            lambda: self.list_workflow_steps(
                workflow_id, load_output=load_output, limit=limit, offset=offset
            ),
        )
