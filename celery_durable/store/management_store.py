"""Managing workflows as DBOS 3.4 does (one statement each): the first of several to
finish, deleting workflows, their attributes, a delayed start's time, and rewinding a
finished workflow to a step."""

from __future__ import annotations

import uuid

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import TERMINAL_STATUSES, VersionInfo
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.store.connections import Connections
from celery_durable.store.rows import Dispatch
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

    def rewind(
        self,
        workflow_id: str,
        start_step: int,
        *,
        closed_marker: str,
        queue_name: str | None,
        application_version: str | None,
    ) -> Dispatch:
        """Drops what a finished workflow recorded from ``start_step`` on and enqueues
        it again under its own id, in one transaction (see the statements).

        Args:
            closed_marker: A stream's close marker as the serializer writes it.

        Raises:
            DBOSNonExistentWorkflowError: no such workflow.
            DBOSException: it has not finished (cancel it first).
        """
        params = {
            "workflow_uuid": workflow_id,
            "start_step": start_step,
            "closed_marker": closed_marker,
            "queue_name": queue_name,
            "application_version": application_version,
            "now": now_epoch_ms(),
        }
        with self._connections.transaction(f"rewinding workflow {workflow_id}") as connection:
            status = connection.execute(management.LOCK_FOR_REWIND, params).scalar()
            if status is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
            if status not in TERMINAL_STATUSES:
                raise DBOSException(
                    f"Cannot rewind {workflow_id} ({status}): only a workflow in a "
                    "terminal state can be rewound, so cancel it first"
                )
            for statement in (
                management.DROP_REWOUND_EVENTS,
                management.RESTORE_REWOUND_EVENTS,
                management.DISCARD_REWOUND_RUN,
            ):
                connection.execute(statement, params)
            row = connection.execute(management.REQUEUE_REWOUND, params).one()
        return Dispatch(
            name=row.name, queue_name=row.queue_name, generation=row.dispatch_generation
        )

    # -- application versions ----------------------------------------------------------

    def register_version(self, version_name: str) -> None:
        """Records an application version (nothing if it is recorded already)."""
        self._connections.run(
            f"registering application version {version_name}",
            lambda connection: connection.execute(
                management.REGISTER_VERSION,
                {
                    "version_id": str(uuid.uuid4()),
                    "version_name": version_name,
                    "now": now_epoch_ms(),
                },
            ),
        )

    def list_versions(self) -> list[VersionInfo]:
        """Every recorded application version, the latest first."""
        rows = self._connections.run(
            "listing application versions",
            lambda connection: connection.execute(management.LIST_VERSIONS).all(),
        )
        return [
            VersionInfo(
                version_id=row.version_id,
                version_name=row.version_name,
                version_timestamp=row.version_timestamp,
                created_at=row.created_at,
                application_name=None,
            )
            for row in rows
        ]

    def promote_version(self, version_name: str) -> None:
        """Makes a recorded version the latest (nothing if it is not recorded)."""
        self._connections.run(
            f"promoting application version {version_name}",
            lambda connection: connection.execute(
                management.PROMOTE_VERSION, {"version_name": version_name, "now": now_epoch_ms()}
            ),
        )
