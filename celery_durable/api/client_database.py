"""``DBOSClient``'s calls on the system database itself, as DBOS 3.4's client has them
(a part of ``DBOSClient``): checking the connection, enqueueing and sending inside the
caller's own SQLAlchemy transaction, and ``rename_application``.

Each delegates to the client service's
:class:`~celery_durable.service.caller_transactions.CallerTransactions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from celery_durable.api.enqueue_options import EnqueueOptions, enqueue_request
from celery_durable.service import WorkflowService
from celery_durable.service.caller_transactions import MessageToSend
from celery_durable.service.handles import WorkflowHandle

__all__ = ["ClientDatabase"]


class ClientDatabase:
    """``check_connection``, the ``*_in_transaction`` writes and
    ``rename_application`` on ``DBOSClient``."""

    _service: WorkflowService

    def check_connection(self) -> None:
        """Raises unless the client can reach its system database (a ``lazy`` client
        connects first here).

        Raises:
            DBOSSystemDatabaseError: it cannot be reached.
        """
        self._service.transactions.check_connection()

    async def check_connection_async(self) -> None:
        """``check_connection`` for async callers."""
        await self._service.transactions.check_connection_async()

    def enqueue_in_transaction(
        self,
        conn_or_session: Connection | Session,
        options: EnqueueOptions,
        *args: Any,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """As ``enqueue``, inside the caller's transaction on the system database: the
        workflow exists once the caller commits (a rollback leaves nothing), and a
        worker publishes it then. The handle is valid after the commit.

        From async code: ``await conn.run_sync(lambda c:
        client.enqueue_in_transaction(c, options, ...))``.

        Raises:
            DBOSException: the connection is not on the system database, or
                ``duplication_policy="return-existing"`` (use ``enqueue``).
            DBOSQueueDeduplicatedError: the deduplication id is taken (the caller's
                transaction is aborted: roll it back).
        """
        workflow_id = self._service.transactions.enqueue(
            conn_or_session, enqueue_request(options), args, kwargs
        )
        return self._service.handle(workflow_id)

    def send_in_transaction(
        self,
        conn_or_session: Connection | Session,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: Any = None,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """As ``send``, inside the caller's transaction on the system database: the
        destination sees the message once the caller commits.

        Raises:
            DBOSNonExistentWorkflowError: no such destination.
            DBOSException: the connection is not on the system database; a
                ``serialization_type``, ``send_to_forks`` or ``shard_key`` (not
                supported here).
        """
        self._service.transactions.send(
            conn_or_session,
            [_Message(destination_id, message, topic, idempotency_key, shard_key)],
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
        )

    def send_bulk_in_transaction(
        self,
        conn_or_session: Connection | Session,
        messages: list[MessageToSend],
        *,
        serialization_type: Any = None,
        send_to_forks: bool = False,
    ) -> None:
        """Sends each message (DBOS's ``SendMessage``: ``destination_id``, ``message``,
        ``topic``, ``idempotency_key``) inside the caller's transaction, as
        ``send_in_transaction``."""
        self._service.transactions.send(
            conn_or_session,
            messages,
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
        )

    def rename_application(
        self,
        old_name: str | None,
        new_name: str,
        *,
        batch_size: int | None = 10_000,
        adopt_unclaimed_rows: bool = False,
    ) -> Any:
        """DBOS's move of rows between applications sharing a system database: here no
        row has an owning application, so it raises, saying so.

        Raises:
            DBOSException: always.
        """
        return self._service.transactions.rename_application(
            old_name, new_name, batch_size=batch_size, adopt_unclaimed_rows=adopt_unclaimed_rows
        )

    async def rename_application_async(
        self,
        old_name: str | None,
        new_name: str,
        *,
        batch_size: int | None = 10_000,
        adopt_unclaimed_rows: bool = False,
    ) -> Any:
        """``rename_application`` for async callers."""
        return self._service.transactions.rename_application(
            old_name, new_name, batch_size=batch_size, adopt_unclaimed_rows=adopt_unclaimed_rows
        )


class _Message:
    """``send_in_transaction``'s one message, as ``send_bulk_in_transaction`` takes it."""

    def __init__(
        self,
        destination_id: str,
        message: Any,
        topic: str | None,
        idempotency_key: str | None,
        shard_key: str | None,
    ) -> None:
        self.destination_id = destination_id
        self.message = message
        self.topic = topic
        self.idempotency_key = idempotency_key
        self.shard_key = shard_key
