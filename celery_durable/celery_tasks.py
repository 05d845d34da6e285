"""The Celery integration: workflow tasks, and every Celery setting they need.

Each registered workflow becomes a Celery task of the same name whose only argument is
the workflow id. The engine signals "wait, then run me again" with
:class:`RescheduleWorkflow`; this module alone turns that into ``Task.retry``.

Celery's defaults are wrong for durable work and are overridden here:

- ``max_retries=None``: the attempt budget is the step's, kept in PostgreSQL.
- no ``expires``: a retry carries the original message's options, and an expiry would
  revoke a step's later attempt.
- ``acks_late=True`` with ``reject_on_worker_lost=True``: a killed child does not drop
  its message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from celery import Celery, Task
from celery.exceptions import Ignore

from celery_durable._signals import RescheduleWorkflow
from celery_durable.engine import Engine
from celery_durable.error import StepRetry
from celery_durable.registry import WorkflowSpec
from celery_durable.serialization import to_jsonable

logger = logging.getLogger("celery_durable.celery")

WORKFLOW_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,
    # The body takes the workflow id, not the workflow's own arguments.
    "typing": False,
}


def register_workflow_task(
    app: Celery, spec: WorkflowSpec, engine: Callable[[], Engine]
) -> Task[Any, Any]:
    """Registers the Celery task that executes ``spec``.

    Idempotent: Celery keeps the first task registered under a name.
    """

    def execute_workflow(task: Task[Any, Any], workflow_id: str) -> Any:
        try:
            result = engine().run(workflow_id, inline_retries=False)
        except RescheduleWorkflow as signal:
            # Celery logs the retry ("Retry in 4s: StepRetry(...)") and Flower shows it.
            raise task.retry(
                countdown=signal.countdown_seconds,
                exc=StepRetry(signal.reason),
                max_retries=None,
            ) from None
        if result.outcome != "completed":
            # Another delivery owns the workflow, it already finished, or it does not
            # exist: acknowledge this message and leave the task's state alone.
            logger.info(
                "Workflow %s: delivery ignored (%s, status %s)",
                workflow_id,
                result.outcome,
                result.status,
            )
            raise Ignore()
        if result.error is not None:
            raise result.error
        return to_jsonable(result.output)

    execute_workflow.__name__ = spec.name.rpartition(".")[2] or "workflow"
    execute_workflow.__qualname__ = spec.name
    execute_workflow.__module__ = spec.function.__module__
    execute_workflow.__doc__ = spec.function.__doc__
    decorate = cast(
        Callable[[Callable[..., Any]], "Task[Any, Any]"],
        app.task(name=spec.name, bind=True, **WORKFLOW_TASK_OPTIONS),
    )
    return decorate(execute_workflow)


def publish_workflow(
    app: Celery,
    name: str,
    workflow_id: str,
    *,
    queue: str | None = None,
    priority: int | None = None,
) -> None:
    """Publishes a workflow's message by task name (routes apply as for any task)."""
    options: dict[str, Any] = {}
    if queue is not None:
        options["queue"] = queue
    if priority is not None:
        options["priority"] = priority
    app.send_task(name, args=[workflow_id], task_id=workflow_id, **options)
