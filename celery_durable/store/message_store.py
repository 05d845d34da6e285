"""Messages, events and streams outside any workflow's execution (pooled connections)."""

from __future__ import annotations

from collections.abc import Sequence

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.bulk_sending import BulkSent, Outgoing, bulk_from_rows, bulk_params
from celery_durable.store.connections import Connections
from celery_durable.store.execution_messages import sent_from_row
from celery_durable.store.rows import Sent
from celery_durable.store.sql import bulk_messages, messaging


class MessageStore:
    """What producers and readers outside any workflow do with messages, events and
    streams (in workflow code they go through its
    :class:`~celery_durable.store.execution.WorkflowExecution`, checkpointed)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def send_message(self, destination: str, topic: str, message_uuid: str, message: str) -> Sent:
        """Sends a message (idempotent on ``message_uuid``)."""
        row = self._connections.run(
            f"sending a message to {destination}",
            lambda connection: connection.execute(
                messaging.SEND_MESSAGE,
                {
                    "destination": destination,
                    "topic": topic,
                    "message_uuid": message_uuid,
                    "message": message,
                    "now": now_epoch_ms(),
                    "sender": None,
                    "sender_function_id": None,
                },
            ).one(),
        )
        return sent_from_row(row)

    def send_bulk(self, messages: Sequence[Outgoing], to_forks: bool) -> BulkSent:
        """Sends every message in one transaction (see schema version 13)."""
        params = {
            **bulk_params(messages, to_forks),
            "now": now_epoch_ms(),
            "sender": None,
            "sender_function_id": None,
            "function_name": None,
        }
        rows = self._connections.run(
            f"sending {len(messages)} messages",
            lambda connection: connection.execute(bulk_messages.SEND_BULK, params).all(),
        )
        return bulk_from_rows(rows)

    def get_event(self, workflow_uuid: str, key: str) -> str | None:
        """The event's latest value (serialized), or None if it is not set."""
        value = self._connections.run(
            f"reading event {key!r} of {workflow_uuid}",
            lambda connection: connection.execute(
                messaging.GET_EVENT, {"workflow_uuid": workflow_uuid, "key": key}
            ).scalar(),
        )
        return None if value is None else str(value)

    def get_all_events(self, workflow_uuid: str) -> dict[str, str]:
        """Every event's latest value (serialized), by key."""
        rows = self._connections.run(
            f"reading the events of {workflow_uuid}",
            lambda connection: connection.execute(
                messaging.GET_ALL_EVENTS, {"workflow_uuid": workflow_uuid}
            ).all(),
        )
        return {str(row.key): str(row.value) for row in rows}

    def read_stream(
        self, workflow_uuid: str, key: str, offset: int
    ) -> tuple[str, str | None] | None:
        """``(workflow status, value at offset or None)``; None if no such workflow."""
        row = self._connections.run(
            f"reading stream {key!r} of {workflow_uuid}",
            lambda connection: connection.execute(
                messaging.READ_STREAM,
                {"workflow_uuid": workflow_uuid, "key": key, "offset": offset},
            ).first(),
        )
        return None if row is None else (str(row.status), row.value)
