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

Every message of a workflow carries its dispatch generation as Celery's ``retries``
(so Flower's retry count is the workflow's); a delivery older than the workflow's
current generation is stale and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import weakref
from collections.abc import Callable
from typing import Any, cast

from celery import Celery, Task
from celery.exceptions import Ignore, Retry

from celery_durable._signals import RescheduleWorkflow
from celery_durable.engine import Engine
from celery_durable.error import DBOSSystemDatabaseError, QueueWait, StepRetry
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

# Workflow names already registered on each app (the app's own registry is only
# complete once the app is finalized).
_registered: weakref.WeakKeyDictionary[Celery, set[str]] = weakref.WeakKeyDictionary()

# How long a workflow task waits when the system database cannot be reached.
SYSTEM_DATABASE_RETRY_SECONDS = 2.0

# RabbitMQ's default consumer_timeout is 30 minutes; a held ETA message past it closes
# the channel. Half of it leaves room for a busy worker.
_AMQP_MAX_COUNTDOWN_SECONDS = 900.0
_REDIS_DEFAULT_VISIBILITY_TIMEOUT = 3600.0


def max_countdown_seconds(app: Celery, configured: float | None) -> float:
    """The longest delay a retry may spend as a Celery countdown on this broker.

    Redis redelivers an unacknowledged message after ``visibility_timeout`` and RabbitMQ
    closes a channel that holds one past ``consumer_timeout``; longer delays are parked
    in PostgreSQL and published by the recovery sweep when due.
    """
    if configured is not None:
        return configured
    url = str(app.conf.broker_url or "")
    if url.startswith(("redis", "rediss", "sentinel")):
        options = app.conf.broker_transport_options or {}
        visibility = float(options.get("visibility_timeout", _REDIS_DEFAULT_VISIBILITY_TIMEOUT))
        return visibility / 2
    return _AMQP_MAX_COUNTDOWN_SECONDS


def register_workflow_task(
    app: Celery,
    spec: WorkflowSpec,
    engine: Callable[[], Engine],
    max_countdown: Callable[[], float],
) -> Task[Any, Any] | None:
    """Registers the Celery task that executes ``spec`` (once per app and name)."""
    registered = _registered.setdefault(app, set())
    if spec.name in registered:
        return None
    registered.add(spec.name)

    def execute_workflow(task: Task[Any, Any], workflow_id: str) -> Any:
        generation = int(task.request.retries or 0)
        try:
            result = engine().run(
                workflow_id,
                inline_retries=False,
                generation=generation,
                max_countdown_seconds=max_countdown(),
                max_recovery_attempts=spec.max_recovery_attempts,
                # The worker node: queues' worker_concurrency counts per node.
                executor_id=task.request.hostname or None,
            )
        except RescheduleWorkflow as signal:
            reason = StepRetry(signal.reason)
            if signal.parked and signal.due_at_epoch_ms is not None:
                # Too long for the broker: the sweep publishes it when due. Raising
                # Retry without publishing still marks the task RETRY (and Flower
                # shows the reason and when).
                # No message carries an eta here: the reason says when.
                when = dt.datetime.fromtimestamp(signal.due_at_epoch_ms / 1000, tz=dt.UTC)
                parked = StepRetry(
                    f"{signal.reason} (parked until {when.isoformat(timespec='seconds')})"
                )
                raise Retry(exc=parked, when=when) from None
            raise task.retry(
                countdown=signal.countdown_seconds, exc=reason, max_retries=None
            ) from None
        except DBOSSystemDatabaseError as error:
            logger.warning("Workflow %s: %s; retrying", workflow_id, error)
            raise task.retry(
                countdown=SYSTEM_DATABASE_RETRY_SECONDS, exc=error, max_retries=None
            ) from None
        if result.outcome == "throttled":
            # Its queue's limits hold it ENQUEUED: ask again later (a Celery retry).
            raise task.retry(
                countdown=_throttle_countdown(result.wait_seconds),
                exc=QueueWait(f"queue limits hold workflow {workflow_id}"),
                max_retries=None,
            )
        if result.outcome != "completed":
            _log_ignored(workflow_id, generation, result.outcome, result.status)
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


def _throttle_countdown(wait_seconds: float) -> float:
    # Spread out the workflows that wait for the same free slot.
    return wait_seconds * random.uniform(1.0, 1.5) + 0.05


def _log_ignored(workflow_id: str, generation: int, outcome: str, status: str | None) -> None:
    # The message is acknowledged and the task's state left alone (Celery's Ignore).
    if outcome == "missing":
        logger.warning("Workflow %s does not exist: message dropped", workflow_id)
    elif outcome == "cancelled":
        logger.info("Workflow %s was cancelled: stopped at a step boundary", workflow_id)
    elif outcome == "exceeded":
        logger.error(
            "Workflow %s is now MAX_RECOVERY_ATTEMPTS_EXCEEDED: its executions died too "
            "often; it will not run again unless resumed",
            workflow_id,
        )
    else:
        logger.info(
            "Workflow %s: delivery %d ignored (%s, status %s)",
            workflow_id,
            generation,
            outcome,
            status,
        )


def resolve_queue(app: Celery, name: str) -> str:
    """The queue Celery's routing sends task ``name`` to (``task_routes`` applied)."""
    options = app.amqp.router.route({}, name, (), {})
    queue = options.get("queue")
    queue_name = getattr(queue, "name", queue)
    return str(queue_name or app.conf.task_default_queue)


def publish_workflow(
    app: Celery,
    name: str,
    workflow_id: str,
    *,
    queue: str | None = None,
    generation: int = 0,
    priority: int | None = None,
) -> None:
    """Publishes a workflow's message by task name, carrying its dispatch generation."""
    options: dict[str, Any] = {}
    if queue is not None:
        options["queue"] = queue
    if priority is not None:
        options["priority"] = priority
    app.send_task(name, args=[workflow_id], task_id=workflow_id, retries=generation, **options)
