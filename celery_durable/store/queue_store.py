"""Queues in the system database, as DBOS 3.x declares them: at run time, by name."""

from __future__ import annotations

from typing import Any, Literal

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.connections import Connections
from celery_durable.store.rows import QueueLimits
from celery_durable.store.sql import queues as queue_sql

OnConflict = Literal["update_if_latest_version", "always_update", "never_update"]


class QueueStore:
    """Registering, reading, changing and deleting queues' rows (their limits)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def register(self, limits: QueueLimits, on_conflict: OnConflict) -> bool:
        """Writes a queue registered at run time; True if it was new (see UPSERT_QUEUE
        for when an existing one is updated)."""
        params = _limit_params(limits) | {
            "name": limits.name,
            "application_version": limits.application_version,
            "on_conflict": on_conflict,
            "now": now_epoch_ms(),
        }
        row = self._connections.run(
            f"registering queue {limits.name}",
            lambda connection: connection.execute(queue_sql.UPSERT_QUEUE, params).first(),
        )
        return bool(row is not None and row.inserted)

    def get(self, name: str) -> QueueLimits | None:
        row = self._connections.run(
            f"reading queue {name}",
            lambda connection: connection.execute(queue_sql.GET_QUEUE, {"name": name}).first(),
        )
        return None if row is None else QueueLimits(**row._asdict())

    def list_all(self) -> list[QueueLimits]:
        """The queues registered at run time, by name (not those declared in code)."""
        rows = self._connections.run(
            "listing queues",
            lambda connection: connection.execute(queue_sql.LIST_QUEUES).all(),
        )
        return [QueueLimits(**row._asdict()) for row in rows]

    def registered_names(self) -> list[str]:
        """The queues registered at run time (every general worker consumes them)."""
        return [limits.name for limits in self.list_all()]

    def deduplication_holder(self, queue_name: str, deduplication_id: str) -> str | None:
        """The id of the queue's active workflow with this deduplication id, if any."""
        params = {"queue_name": queue_name, "deduplication_id": deduplication_id}
        return self._connections.run(
            f"finding deduplication id {deduplication_id}",
            lambda connection: connection.execute(
                queue_sql.DEDUPLICATION_HOLDER, params
            ).scalar_one_or_none(),
        )

    def delete(self, name: str) -> None:
        self._connections.run(
            f"deleting queue {name}",
            lambda connection: connection.execute(queue_sql.DELETE_QUEUE, {"name": name}),
        )

    def update(self, name: str, values: dict[str, Any]) -> bool:
        """Sets some of a queue's limits (keys of ``SETTABLE_COLUMNS``); False if there
        is no such queue."""
        statement = queue_sql.update_queue(tuple(sorted(values)))
        params = values | {"name": name, "now": now_epoch_ms()}
        row = self._connections.run(
            f"updating queue {name}",
            lambda connection: connection.execute(statement, params).first(),
        )
        return row is not None


def _limit_params(limits: QueueLimits) -> dict[str, Any]:
    return {column: getattr(limits, column) for column in queue_sql.SETTABLE_COLUMNS}
