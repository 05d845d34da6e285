"""What the pages and the API read, assembled once for both: a listing, a workflow
with everything it exchanged, its steps, the queues."""

from __future__ import annotations

import itertools
from typing import Any

from celery_durable.api.client import DBOSClient
from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import TERMINAL_STATUSES
from celery_durable.dashboard import documents, timeline
from celery_durable.dashboard.filters import Listing
from celery_durable.error import DBOSStreamTimeoutError
from celery_durable.service import progress
from celery_durable.service.overview import Execution, WorkflowQuery

MAX_CHILDREN = 200
MAX_FORKS = 100
MAX_MESSAGES = 100
MAX_STREAM_VALUES = 100


def listing(client: DBOSClient, asked: Listing) -> dict[str, Any]:
    found = client.overview().page(asked.query, limit=asked.limit, offset=asked.offset)
    return documents.page(found, limit=asked.limit, offset=asked.offset)


def workflow(client: DBOSClient, workflow_id: str, reveal: bool) -> dict[str, Any]:
    """A workflow with its children, events, messages and streams.

    Raises:
        DBOSNonExistentWorkflowError: no workflow has this id.
    """
    status = client.retrieve_workflow(workflow_id).get_status()
    overview = client.overview()
    children = overview.page(
        WorkflowQuery(parent_workflow_id=workflow_id), limit=MAX_CHILDREN, offset=0
    )
    execution = overview.execution(workflow_id)
    document = documents.workflow(status, reveal)
    document["values_hidden"] = not reveal
    document["reason"] = progress.ending_reason(
        status.status, status.workflow_deadline_epoch_ms, status.updated_at
    )
    document["running"] = progress.running_now(
        client.list_workflow_steps(workflow_id) if _held(execution) else [],
        execution,
        now_epoch_ms(),
    )
    document["forked_from"] = execution.forked_from if execution is not None else None
    document["forks"] = [
        {
            "workflow_id": fork.workflow_uuid,
            "status": fork.status,
            "created_at_epoch_ms": fork.created_at_epoch_ms,
        }
        for fork in overview.forks_of(workflow_id, limit=MAX_FORKS)
    ]
    document["waiting_for"] = client.unregistered_note(status)
    document["children"] = [documents.summary(child) for child in children.workflows]
    events = client.get_all_events(workflow_id)
    document["events"] = {key: documents.value(item, reveal) for key, item in events.items()}
    document["messages"] = [
        {**message, "message": documents.value(message["message"], reveal)}
        for message in overview.messages(workflow_id, limit=MAX_MESSAGES)
    ]
    document["streams"] = {
        key: _stream(client, workflow_id, key, reveal) for key in overview.stream_keys(workflow_id)
    }
    return document


def _stream(client: DBOSClient, workflow_id: str, key: str, reveal: bool) -> Any:
    if not reveal:
        return documents.HIDDEN
    values: list[Any] = []
    try:
        # A zero timeout reads what is there: the reader raises where it would wait.
        reader = client.read_stream(workflow_id, key, timeout_seconds=0)
        values.extend(itertools.islice(reader, MAX_STREAM_VALUES))
    except DBOSStreamTimeoutError:
        pass
    return [documents.value(item, True) for item in values]


def steps(client: DBOSClient, workflow_id: str, reveal: bool) -> list[dict[str, Any]]:
    """Every step of an existing workflow, every attempt of each.

    Raises:
        DBOSNonExistentWorkflowError: no workflow has this id.
    """
    client.retrieve_workflow(workflow_id)
    recorded = client.list_workflow_steps(workflow_id)
    execution = client.overview().execution(workflow_id)
    return documents.steps(
        progress.with_current_attempts(recorded, execution, now_epoch_ms()), reveal
    )


def _held(execution: Execution | None) -> bool:
    """Whether an execution holds the workflow (only then are its steps read for
    ``running``)."""
    return execution is not None and execution.execution_active


def workflow_timeline(
    document: dict[str, Any], step_documents: list[dict[str, Any]]
) -> timeline.Timeline:
    """The timeline of a workflow document's steps, up to now while it runs."""
    origin = document["started_at_epoch_ms"] or document["created_at_epoch_ms"]
    finished = document["status"] in TERMINAL_STATUSES
    end = (
        (document["completed_at_epoch_ms"] or document["updated_at_epoch_ms"])
        if finished
        else now_epoch_ms()
    )
    return timeline.build(
        step_documents, origin_ms=origin, end_ms=end, running=document.get("running")
    )


def queues(client: DBOSClient) -> list[dict[str, Any]]:
    return [documents.queue(depth) for depth in client.overview().queue_depths()]
