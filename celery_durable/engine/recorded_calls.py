"""DBOS's inspection calls made from workflow code, recorded as operations.

DBOS Transact records ``DBOS.get_workflow_status`` (and a handle's ``get_status``) as
``DBOS.getStatus``, ``DBOS.list_workflows`` as ``DBOS.listWorkflows``,
``DBOS.list_queued_workflows`` as ``DBOS.listQueuedWorkflows`` and
``DBOS.list_workflow_steps`` as ``DBOS.listWorkflowSteps`` (and ``DBOS.fork_workflow``
as ``DBOS.forkWorkflow``, its new id) when workflow code calls them: a replay reads
what the first execution read, not what is there now (and forks nothing again).
Outside workflow code (and inside a step) they run as plain calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, WorkflowStatus
from celery_durable.engine import checkpoints
from celery_durable.engine.context import WorkflowContext, in_workflow_code

T = TypeVar("T")

GET_STATUS_NAME = "DBOS.getStatus"
LIST_WORKFLOWS_NAME = "DBOS.listWorkflows"
LIST_QUEUED_WORKFLOWS_NAME = "DBOS.listQueuedWorkflows"
LIST_STEPS_NAME = "DBOS.listWorkflowSteps"
FORK_NAME = "DBOS.forkWorkflow"


def call_recorded(
    name: str,
    function: Callable[[], T],
    encode: Callable[[T], Any] = lambda value: value,
    decode: Callable[[Any], T] = lambda value: value,
) -> T:
    """``function()``; in workflow code, recorded once under ``name`` (its value, or its
    error) and replayed from the record after that."""
    workflow = in_workflow_code()
    if workflow is None:
        return function()
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None and recorded.completed:
        checkpoints.expect_name(workflow, function_id, name, recorded.function_name)
        return decode(checkpoints.replay(workflow, recorded))
    started = now_epoch_ms()
    try:
        value = function()
    except Exception as failure:
        _record(workflow, function_id, name, started, None, workflow.serializer.dumps(failure))
        raise
    _record(workflow, function_id, name, started, workflow.serializer.dumps(encode(value)), None)
    return value


def _record(
    workflow: WorkflowContext,
    function_id: int,
    name: str,
    started: int,
    output: str | None,
    error: str | None,
) -> None:
    checkpoints.record(
        workflow,
        StepRecord(
            function_id=function_id,
            function_name=name,
            output=output,
            error=error,
            attempts=1,
            attempt_log=None,
            retry_due_at_epoch_ms=None,
            started_at_epoch_ms=started,
            completed_at_epoch_ms=now_epoch_ms(),
        ),
    )


def recorded_status(read: Callable[[], WorkflowStatus | None]) -> WorkflowStatus | None:
    """``DBOS.get_workflow_status``'s read, recorded as ``DBOS.getStatus``."""
    return call_recorded(GET_STATUS_NAME, read, encode_status, decode_status)


def encode_status(status: WorkflowStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {field.name: getattr(status, field.name) for field in dataclasses.fields(status)}


def decode_status(value: dict[str, Any] | None) -> WorkflowStatus | None:
    return None if value is None else WorkflowStatus(**value)


def decode_existing_status(value: dict[str, Any]) -> WorkflowStatus:
    return WorkflowStatus(**value)


def encode_statuses(statuses: list[WorkflowStatus]) -> list[dict[str, Any] | None]:
    return [encode_status(status) for status in statuses]


def decode_statuses(values: list[dict[str, Any]]) -> list[WorkflowStatus]:
    return [WorkflowStatus(**value) for value in values]
