"""The ``DBOS`` facade's process-level members from DBOS 3.4 (a part of ``DBOS``):
``executor_id``, ``span`` and ``tracer`` (class properties), ``set_authentication``,
``listen_queues``, and the members of features a Celery deployment has elsewhere
(``alert_handler``, ``kafka_consumer``), which say what to use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from celery_durable.api.ambient import AmbientProperties
from celery_durable.api.facade import ConfiguredFacade
from celery_durable.api.options import validate_identity
from celery_durable.error import DBOSException
from celery_durable.service import process_extras

logger = logging.getLogger("dbos")

KafkaOrdering = Literal["none", "partition", "topic"]


class ProcessProperties(AmbientProperties):
    """``DBOS.executor_id``, ``DBOS.span`` and ``DBOS.tracer``."""

    @property
    def executor_id(cls) -> str:
        """This process's executor id (``workflow_status.executor_id`` of what it runs)."""
        return process_extras.executor_id(ConfiguredFacade._current_service())

    @property
    def span(cls) -> Any:
        """The current OpenTelemetry span (the running step attempt's or workflow's
        while tracing is on; needs ``celery-durable[otel]``)."""
        return process_extras.current_span()

    @property
    def tracer(cls) -> Any:
        """The OpenTelemetry tracer of celery_durable's spans (``celery-durable[otel]``)."""
        return process_extras.tracer()


class WorkflowProcess(ConfiguredFacade):
    """``DBOS.set_authentication``, ``DBOS.listen_queues`` and the members that say
    what to use instead."""

    @classmethod
    def set_authentication(
        cls, authenticated_user: str | None, authenticated_roles: list[str] | None
    ) -> None:
        """Acts as this user, with these roles, from here on in the current context
        (``DBOSContextSetAuth`` does it for a block)."""
        user, roles = validate_identity(authenticated_user, authenticated_roles)
        process_extras.set_authentication(user, roles)

    @classmethod
    def listen_queues(cls, queues: Sequence[str]) -> None:
        """This process's workers consume only these queues (and the app's default
        queue, where workflows started without a queue go), as in DBOS. Call it before
        ``DBOS.launch()``.

        The in-process worker of ``DBOS.launch()`` consumes the default queue and the
        listed queues, and no other queue declared in code or registered at run time.
        In a ``celery worker`` process, its ``-Q`` decides what it consumes, as
        always; ``listen_queues`` there narrows the queues registered at run time that
        a general-purpose worker (one consuming the default queue) adopts to the
        listed ones (see docs/queues.md).

        Raises:
            DBOSException: after ``DBOS.launch()``, or called twice.
        """
        cls._service().listen_queues(queues)

    @classmethod
    def alert_handler(
        cls, func: Callable[[str, str, dict[str, str]], None]
    ) -> Callable[[str, str, dict[str, str]], None]:
        """Accepted with a warning: alerts come from DBOS Conductor, which a Celery
        deployment does not have; the handler is never called."""
        logger.warning(
            "DBOS.alert_handler: %s is never called (alerts come from DBOS Conductor, "
            "which celery_durable does not use; see docs/observability.md for metrics)",
            getattr(func, "__qualname__", func),
        )
        return func

    @classmethod
    def kafka_consumer(
        cls,
        config: dict[str, Any],
        topics: list[str],
        *,
        ordering: KafkaOrdering | None = None,
        batch_size: int = 250,
        queue_name: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Not supported.

        Raises:
            DBOSException: always: consume Kafka in your own consumer and start a
                workflow per message (``DBOS.start_workflow`` or a queue's
                ``enqueue``, with ``SetWorkflowID(f"{topic}-{partition}-{offset}")``
                for exactly-once processing).
        """
        raise DBOSException(
            "DBOS.kafka_consumer is not supported by celery_durable: consume the topics "
            f"{topics} with your own Kafka consumer and start one workflow per message "
            "(DBOS.start_workflow or Queue.enqueue) inside "
            'SetWorkflowID(f"{topic}-{partition}-{offset}") so each message runs once'
        )
