"""DBOSClient's writes inside the caller's own SQLAlchemy transaction (DBOS 3.4's
``enqueue_in_transaction``, ``send_in_transaction``, ``send_bulk_in_transaction``).

The rows are written on the caller's connection, so they commit or roll back with the
caller's own writes; a worker publishes what they start when the transaction commits
(see :mod:`celery_durable.store.caller_transactions`). Also the client's
``check_connection`` and ``rename_application``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from celery_durable.core.serialization import writer_for
from celery_durable.engine import bulk_send
from celery_durable.error import (
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSWorkflowIDInUseError,
)
from celery_durable.integration.runtime import Runtime
from celery_durable.service.management import refuse_shard_key
from celery_durable.service.queues import EnqueueRequest
from celery_durable.store.bulk_sending import send_bulk_on
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
        """Sends the messages in the caller's transaction, in order (schema version
        15's ``send_bulk``: all or none), in ``serialization_type``'s format, and with
        ``send_to_forks`` to every fork of each destination too.

        Raises:
            DBOSNonExistentWorkflowError: a destination does not exist (nothing sent).
            DBOSException: the connection is not on the system database, a shard key,
                or an idempotency key twice in one call.
        """
        connection = caller_connection(conn_or_session)
        self._store.check_system_database(connection)
        for sent in messages:
            refuse_shard_key(getattr(sent, "shard_key", None))
        writer = writer_for(serialization_type, self._runtime.process.serializer, False)
        outgoing = bulk_send.outgoing_messages(
            [
                (m.destination_id, m.message, m.topic, getattr(m, "idempotency_key", None))
                for m in messages
            ],
            writer,
        )
        if not outgoing:
            return
        sent_all = send_bulk_on(connection, outgoing, send_to_forks)
        if sent_all.outcome == "missing":
            raise DBOSNonExistentWorkflowError("`send` destination", sent_all.missing or "")

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
