"""Overviews for dashboards and metrics (``DBOSClient.overview()``): pages of workflows
with their counts per status, queue depths, and what a workflow received.

Reading only; a database without the schema raises
:class:`~celery_durable.error.DBOSSchemaMissingError` naming ``celery-durable migrate``.
"""

from __future__ import annotations

from typing import Any

from celery_durable.core.serialization import Serializer
from celery_durable.error import DBOSSerializationError
from celery_durable.store import SystemStore
from celery_durable.store.channels import NULL_TOPIC
from celery_durable.store.overview_store import (
    Execution,
    Fork,
    QueueDepth,
    WorkflowPage,
    WorkflowQuery,
    WorkflowSummary,
)

__all__ = [
    "Execution",
    "Fork",
    "Overview",
    "QueueDepth",
    "WorkflowPage",
    "WorkflowQuery",
    "WorkflowSummary",
]


class Overview:
    """Read-only overviews of one system database."""

    def __init__(self, store: SystemStore, serializer: Serializer) -> None:
        self._store = store.overview
        self._system = store
        self._serializer = serializer

    def schema_version(self) -> int:
        """The schema's version (raises ``DBOSSchemaMissingError`` if there is none)."""
        return self._system.schema.version()

    def page(self, query: WorkflowQuery, *, limit: int, offset: int) -> WorkflowPage:
        """Newest first, with the counts per status of everything the other filters
        match (see :class:`WorkflowQuery`)."""
        return self._store.page(query, limit=limit, offset=offset)

    def counts_by_name_and_status(self) -> list[tuple[str, str, int]]:
        return self._store.counts_by_name_and_status()

    def queue_depths(self) -> list[QueueDepth]:
        return self._store.queue_depths()

    def messages(self, workflow_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The first ``limit`` messages sent to a workflow: ``topic`` (None for none),
        ``message``, ``created_at_epoch_ms`` and ``consumed_by_function_id``."""
        found = []
        for stored in self._store.messages_to(workflow_id, limit=limit):
            found.append(
                {
                    "topic": None if stored.topic == NULL_TOPIC else stored.topic,
                    "message": self._load(stored.message),
                    "created_at_epoch_ms": stored.created_at_epoch_ms,
                    "consumed_by_function_id": stored.consumed_by_function_id,
                }
            )
        return found

    def execution(self, workflow_id: str) -> Execution | None:
        """What the workflow's row says about its execution now (see
        :mod:`celery_durable.service.progress`); None: no such workflow."""
        return self._store.execution(workflow_id)

    def forks_of(self, workflow_id: str, *, limit: int = 100) -> list[Fork]:
        """The newest ``limit`` forks of a workflow."""
        return self._store.forks_of(workflow_id, limit=limit)

    def versions_last_seen(self) -> dict[str, int]:
        """Each application version with when a worker of it was last seen."""
        return self._store.versions_last_seen()

    def stream_keys(self, workflow_id: str) -> dict[str, int]:
        """Each stream key of a workflow, with how many values it stored."""
        return self._store.stream_keys(workflow_id)

    def _load(self, text: str) -> Any:
        try:
            return self._serializer.loads(text)
        except DBOSSerializationError as error:
            return f"<not readable here: {error}>"
