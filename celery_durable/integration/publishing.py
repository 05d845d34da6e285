"""Publishing workflow messages: routing, the dispatch generation, broker delay limits."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from celery_durable.observability.setup import trace_headers

logger = logging.getLogger("celery_durable.publishing")

# The header that marks a workflow's message (its value: the workflow's name).
WORKFLOW_HEADER = "celery_durable_workflow"

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
    countdown: float | None = None,
    trace: object = None,
) -> None:
    """Publishes a workflow's message by task name, carrying its dispatch generation
    (delivered after ``countdown`` seconds, if given) and the current trace context (or
    ``trace``, a stored W3C carrier, when given).

    The message's only argument is the workflow id (inputs are read from PostgreSQL);
    its task id is the workflow id, so Flower shows one row per workflow; its Celery
    ``retries`` is the dispatch generation (a delivery older than the workflow's
    current generation is stale).
    """
    options: dict[str, Any] = {}
    if countdown:
        options["countdown"] = countdown
    if queue is not None:
        options["queue"] = queue
    # Marks the message as a workflow's (a worker without the workflow says so in one
    # line: see ``unknown_tasks``). The producer's trace continues in the execution
    # (kept by Celery across retries).
    options["headers"] = {WORKFLOW_HEADER: name, **(trace_headers(trace) or {})}
    app.send_task(name, args=[workflow_id], task_id=workflow_id, retries=generation, **options)


def publish_new_workflow(
    app: Celery, name: str, workflow_id: str, *, queue: str | None, generation: int = 0
) -> None:
    """Publishes a just-inserted (or just-released) workflow; a broker failure is left to
    the sweep.

    The workflow exists once its row is committed: if the message cannot be sent, the
    recovery sweep publishes it when its delivery is overdue.
    """
    try:
        publish_workflow(app, name, workflow_id, queue=queue, generation=generation)
    except Exception as error:
        logger.warning(
            "Workflow %s is ENQUEUED but its message could not be published (%r); the "
            "recovery sweep will publish it",
            workflow_id,
            error,
        )
