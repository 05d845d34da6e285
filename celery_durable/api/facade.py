"""The base of ``DBOS`` and of the parts its surface is written in (messages,
schedules, versions, queues ...), and of ``Queue``: the process's declarations, and the
:class:`~celery_durable.service.WorkflowService` of the configured ``DBOS``, which
every method delegates to."""

from __future__ import annotations

from typing import ClassVar

from celery_durable.error import DBOSInitializationError
from celery_durable.service import WorkflowService
from celery_durable.service.types import QueueLimits, Registry


class ConfiguredFacade:
    """What ``DBOS``, its parts and ``Queue`` share.

    The process's declarations, made at import time, before a ``DBOS`` may be
    configured (each configured ``DBOS`` serves them): the workflows, steps and classes
    in ``_registry``, the limits of each ``Queue(...)`` in ``_queues`` and the crons of
    ``@DBOS.scheduled`` workflows in ``_scheduled_workflows`` (name -> cron). And the
    service of the process's one configured ``DBOS`` (``DBOS(...)`` sets it).
    """

    _registry: ClassVar[Registry] = Registry()
    _queues: ClassVar[dict[str, QueueLimits]] = {}
    _scheduled_workflows: ClassVar[dict[str, str]] = {}
    _configured: ClassVar[WorkflowService | None] = None

    @classmethod
    def _service(cls) -> WorkflowService:
        """The configured service.

        Raises:
            DBOSInitializationError: ``DBOS(celery=..., config=...)`` was not called.
        """
        service = ConfiguredFacade._configured
        if service is None:
            raise DBOSInitializationError(
                "DBOS is not configured: call DBOS(config={...}) (or "
                "DBOS(celery=app, config={...})) first"
            )
        return service

    @classmethod
    def _install(cls, service: WorkflowService | None) -> None:
        """Makes ``service`` the configured one (None: none), after releasing the one
        before it (its connections and its workers' hooks)."""
        previous = ConfiguredFacade._configured
        if previous is not None:
            previous.release()
        ConfiguredFacade._configured = service

    @classmethod
    def _current_service(cls) -> WorkflowService | None:
        return ConfiguredFacade._configured

    @classmethod
    def _register_queue(cls, limits: QueueLimits) -> None:
        """A ``Queue``'s limits, written to PostgreSQL when a process's engine starts."""
        ConfiguredFacade._queues[limits.name] = limits
        service = ConfiguredFacade._configured
        if service is not None:
            service.refresh_worker()
