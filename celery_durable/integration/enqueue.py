"""Building a new workflow's row: its id, queue, options and serialized inputs."""

from __future__ import annotations

import uuid
from typing import Any, Literal, TypedDict

from celery_durable.core.serialization import Serializer
from celery_durable.engine.context import enqueue_options, next_workflow_id
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.store import NewWorkflow, QueueLimits


class EnqueueSettings(TypedDict, total=False):
    deduplication_id: str | None
    priority: int | None


def new_workflow_row(
    serializer: Serializer,
    spec: WorkflowSpec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    status: Literal["ENQUEUED", "PENDING"],
    queue_name: str,
    limits: QueueLimits | None,
    workflow_id: str | None = None,
    parent_workflow_id: str | None = None,
    options: EnqueueSettings | None = None,
    require_registered: bool = False,
) -> NewWorkflow:
    """A workflow's row, not yet written.

    ``SetWorkflowID`` names it unless ``workflow_id`` does; ``SetEnqueueOptions`` gives
    its deduplication id and priority unless ``options`` does.

    Raises:
        DBOSSerializationError: an argument cannot be serialized (nothing is written).
        DBOSException: a priority on a queue without ``priority_enabled``.
    """
    chosen_id = workflow_id or next_workflow_id.get() or str(uuid.uuid4())
    next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
    settings: EnqueueSettings = options or enqueue_options.get() or EnqueueSettings()
    priority = settings.get("priority")
    if priority is not None and limits is not None and not limits.priority_enabled:
        raise DBOSException(
            f"Workflow priority needs a queue with priority_enabled=True; {queue_name!r} is not one"
        )
    return NewWorkflow(
        workflow_uuid=chosen_id,
        name=spec.name,
        status=status,
        queue_name=queue_name,
        inputs=serializer.dumps({"args": list(args), "kwargs": kwargs}),
        authenticated_user=None,
        max_recovery_attempts=spec.max_recovery_attempts,
        parent_workflow_id=parent_workflow_id,
        deduplication_id=settings.get("deduplication_id"),
        priority=priority or 0,
        require_registered=require_registered,
    )
