"""The base of ``DBOS`` and of the parts its surface is written in (messages,
schedules, versions): the process's configured ``DBOS`` and, through it, the
:class:`~celery_durable.service.WorkflowService` every method delegates to."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from celery_durable.error import DBOSInitializationError
from celery_durable.service import WorkflowService

if TYPE_CHECKING:
    from celery_durable.api.dbos import DBOS


class ConfiguredFacade:
    """Holds the process's one configured ``DBOS`` (``DBOS(...)`` sets it)."""

    _instance: ClassVar[DBOS | None] = None

    @classmethod
    def _service(cls) -> WorkflowService:
        """The configured service.

        Raises:
            DBOSInitializationError: ``DBOS(celery=..., config=...)`` was not called.
        """
        instance = ConfiguredFacade._instance
        if instance is None:
            raise DBOSInitializationError(
                "DBOS is not configured: call DBOS(config={...}) (or "
                "DBOS(celery=app, config={...})) first"
            )
        return instance.service

    @classmethod
    def _install(cls, instance: DBOS | None) -> None:
        """Makes ``instance`` the configured ``DBOS`` (None: none), after releasing the
        one before it (its connections and its workers' hooks)."""
        previous = ConfiguredFacade._instance
        if previous is not None:
            previous.service.release()
        ConfiguredFacade._instance = instance

    @classmethod
    def _current_service(cls) -> WorkflowService | None:
        instance = ConfiguredFacade._instance
        return None if instance is None else instance.service
