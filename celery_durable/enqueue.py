"""Creating a workflow: its row first, then its Celery message (DBOS and DBOSClient)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from celery import Celery

from celery_durable.celery_tasks import publish_workflow
from celery_durable.serialization import Serializer
from celery_durable.store import NewWorkflow

logger = logging.getLogger("celery_durable.enqueue")


def new_workflow(
    serializer: Serializer,
    *,
    workflow_id: str,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    status: Literal["ENQUEUED", "PENDING"],
    queue_name: str | None,
    max_recovery_attempts: int,
    parent_workflow_id: str | None = None,
    deduplication_id: str | None = None,
    priority: int = 0,
    require_registered: bool = False,
) -> NewWorkflow:
    """The row of a workflow to create, its arguments serialized.

    Raises:
        DBOSSerializationError: an argument cannot be serialized (nothing is written).
    """
    return NewWorkflow(
        workflow_uuid=workflow_id,
        name=name,
        status=status,
        queue_name=queue_name,
        inputs=serializer.dumps({"args": list(args), "kwargs": kwargs}),
        authenticated_user=None,
        max_recovery_attempts=max_recovery_attempts,
        parent_workflow_id=parent_workflow_id,
        deduplication_id=deduplication_id,
        priority=priority,
        require_registered=require_registered,
    )


def publish_new_workflow(
    app: Celery, name: str, workflow_id: str, *, queue: str | None, priority: int | None = None
) -> None:
    """Publishes a just-inserted workflow; a broker failure is left to the sweep.

    The workflow exists once its row is committed: if the message cannot be sent, the
    recovery sweep publishes it when its delivery is overdue.
    """
    try:
        publish_workflow(app, name, workflow_id, queue=queue, priority=priority)
    except Exception as error:
        logger.warning(
            "Workflow %s is ENQUEUED but its message could not be published (%r); the "
            "recovery sweep will publish it",
            workflow_id,
            error,
        )
