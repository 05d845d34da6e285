"""Managing workflows as DBOS 3.4 does (one statement each): the first of several to
finish, deleting workflows, their attributes and a delayed start's time."""

from __future__ import annotations

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.connections import Connections
from celery_durable.store.sql import management


class ManagementStore:
    """The statements behind ``wait_first``, ``delete_workflows``,
    ``update_workflow_attributes`` and ``set_workflow_delay``."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def first_finished(self, workflow_ids: list[str]) -> str | None:
        """One of these workflows that has finished (the earliest), or None."""
        row = self._connections.run(
            "reading which workflow finished first",
            lambda connection: connection.execute(
                management.FIRST_FINISHED, {"workflow_ids": workflow_ids}
            ).first(),
        )
        return None if row is None else str(row.workflow_uuid)

    def descendants(self, workflow_ids: list[str]) -> list[str]:
        """Every workflow these started, recursively (children, grandchildren, ...)."""
        rows = self._connections.run(
            "reading child workflows",
            lambda connection: connection.execute(
                management.DESCENDANTS, {"workflow_ids": workflow_ids}
            ).all(),
        )
        return [str(row.workflow_uuid) for row in rows]

    def delete_workflows(self, workflow_ids: list[str]) -> list[str]:
        """Deletes these workflows with their checkpoints, events, streams and messages;
        returns the ids that existed."""
        rows = self._connections.run(
            "deleting workflows",
            lambda connection: connection.execute(
                management.DELETE_WORKFLOWS, {"workflow_ids": workflow_ids}
            ).all(),
        )
        return [str(row.workflow_uuid) for row in rows]

    def update_attributes(self, workflow_id: str, attributes: str | None, *, merge: bool) -> bool:
        """Sets a workflow's attributes (a JSON object; None: none), or merges their
        top-level keys; False if the workflow does not exist."""
        row = self._connections.run(
            f"updating the attributes of workflow {workflow_id}",
            lambda connection: connection.execute(
                management.UPDATE_ATTRIBUTES,
                {
                    "workflow_uuid": workflow_id,
                    "attributes": attributes,
                    "merge": merge,
                    "now": now_epoch_ms(),
                },
            ).first(),
        )
        return row is not None

    def set_delay(self, workflow_id: str, delay_until_epoch_ms: int) -> bool:
        """Moves a DELAYED workflow's start; False if it is not DELAYED (or missing)."""
        row = self._connections.run(
            f"setting the delay of workflow {workflow_id}",
            lambda connection: connection.execute(
                management.SET_DELAY,
                {
                    "workflow_uuid": workflow_id,
                    "delay_until": delay_until_epoch_ms,
                    "now": now_epoch_ms(),
                },
            ).first(),
        )
        return row is not None
