"""DBOSClient's writes inside the caller's own SQLAlchemy transaction (DBOS 3.4's
``enqueue_in_transaction``, ``send_in_transaction``, ``send_bulk_in_transaction``).

The rows are written on the caller's connection, so they commit or roll back with the
caller's own writes; a worker publishes what they start when the transaction commits
(see :mod:`celery_durable.store.caller_transactions`). Also the client's
``check_connection`` and ``rename_application``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from celery_durable.engine.mailbox import require_id, topic_key
from celery_durable.error import (
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSWorkflowIDInUseError,
)
from celery_durable.integration.runtime import Runtime
from celery_durable.service.queues import EnqueueRequest
from celery_durable.store.caller_transactions import CallerTransactionStore, caller_connection

__all__ = ["CallerTransactions", "MessageToSend"]


class MessageToSend(Protocol):
    """One message of ``send_bulk_in_transaction`` (DBOS's ``SendMessage``)."""

    destination_id: str
    message: Any
    topic: str | None
    idempotency_key: str | None


class CallerTransactions:
    """The client's writes on a caller's connection to the system database."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._store = CallerTransactionStore(runtime.process.store.url)

    def check_connection(self) -> None:
        """Raises ``DBOSSystemDatabaseError`` unless the system database answers."""
        self._runtime.process.store.connections.check()

    async def check_connection_async(self) -> None:
        await asyncio.to_thread(self.check_connection)

    def enqueue(self, conn_or_session: Any, request: EnqueueRequest, args: Any, kwargs: Any) -> str:
        """Writes the request's workflow in the caller's transaction; returns its id.

        Raises:
            DBOSException: ``duplication_policy="return-existing"`` (finding the holder
                means retrying the insert, which aborts the caller's transaction, as
                in DBOS), or the connection is not on the system database.
            DBOSWorkflowIDInUseError: ``workflow_id_reuse_policy="reject"`` and the id
                is in use.
        """
        if request.return_deduplicated:
            raise DBOSException(
                "duplication_policy 'return-existing' is not supported by "
                "enqueue_in_transaction. Use enqueue instead."
            )
        connection = caller_connection(conn_or_session)
        self._store.check_system_database(connection)
        row = self._runtime.starter.new_row(
            request.spec,
            tuple(args),
            dict(kwargs),
            status="ENQUEUED",
            queue_name=request.queue_name,
            workflow_id=request.workflow_id,
            options=request.effective_settings(),
            require_registered=request.require_registered,
        )
        found = self._store.insert_workflow(connection, row)
        if not found.inserted and request.reject_reused_id:
            raise DBOSWorkflowIDInUseError(row.workflow_uuid, found.status, found.name)
        return row.workflow_uuid

    def send(
        self,
        conn_or_session: Any,
        messages: Sequence[MessageToSend],
        *,
        serialization_type: Any = None,
        send_to_forks: bool = False,
    ) -> None:
        """Sends each message in the caller's transaction, in order.

        Raises:
            DBOSNonExistentWorkflowError: a destination does not exist.
            DBOSException: a ``serialization_type`` or ``send_to_forks`` (not supported
                here), or the connection is not on the system database.
        """
        _refuse_send_options(serialization_type, send_to_forks)
        connection = caller_connection(conn_or_session)
        self._store.check_system_database(connection)
        serializer = self._runtime.process.serializer
        for sent in messages:
            destination = require_id("destination_id", sent.destination_id)
            key = getattr(sent, "idempotency_key", None)
            if getattr(sent, "shard_key", None) is not None:
                raise DBOSException("A shard key requires a sharded system database")
            if key is not None and (not isinstance(key, str) or not key):
                raise DBOSException(f"idempotency_key must be a non-empty string, not {key!r}")
            # As DBOS.send: the key is unique per recipient; a repeated send adds nothing.
            message_uuid = str(uuid.uuid4()) if key is None else f"{key}::{destination}"
            outcome = self._store.send_message(
                connection,
                destination,
                topic_key(sent.topic),
                message_uuid,
                serializer.dumps(sent.message),
            )
            if outcome.outcome == "missing":
                raise DBOSNonExistentWorkflowError("`send` destination", destination)

    def rename_application(
        self,
        old_name: str | None,
        new_name: str,
        *,
        batch_size: int | None = None,
        adopt_unclaimed_rows: bool = False,
    ) -> Any:
        """DBOS moves the ownership of rows between applications sharing a system
        database; no row has an owning application here, so there is nothing to move.

        Raises:
            DBOSException: always, naming why.
        """
        raise DBOSException(
            "rename_application is not supported: celery_durable's rows have no owning "
            "application (one system database serves one Celery app's fleet), so there is "
            "nothing to rename. To change the name workers report, change DBOSConfig "
            "'name'; to give an application a database of its own, use another "
            "system_database_url"
        )


def _refuse_send_options(serialization_type: Any, send_to_forks: bool) -> None:
    if getattr(serialization_type, "value", serialization_type) is not None:
        raise DBOSException(
            f"serialization_type={serialization_type!r} is not supported by the "
            "*_in_transaction sends here: messages use the client's serializer (omit it)"
        )
    if send_to_forks:
        raise DBOSException(
            "send_to_forks is not supported by the *_in_transaction sends here: send to "
            "each fork's workflow id (list them with list_workflows(forked_from=...))"
        )
