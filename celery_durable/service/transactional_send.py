"""Messages sent in a transaction the caller owns on the system database, honouring
DBOS 3.4's ``serialization_type`` and ``send_to_forks`` (a part of
:class:`~celery_durable.service.messages.MessageService`): what
``DBOSClient.send_in_transaction`` and ``send_bulk_in_transaction`` send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from celery_durable.core.serialization import writer_for
from celery_durable.engine import bulk_send
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.integration.runtime import Runtime
from celery_durable.service.management import refuse_shard_key
from celery_durable.store.bulk_sending import send_bulk_on

if TYPE_CHECKING:
    from celery_durable.service.messages import SendMessage


class TransactionalSending:
    """Sends on the caller's connection or session: nothing is begun, committed or
    rolled back here, and the messages are visible once the caller commits."""

    runtime: Runtime

    def send_in_transaction(
        self,
        conn_or_session: Connection | Session,
        messages: Sequence[SendMessage],
        *,
        serialization_type: object = None,
        send_to_forks: bool = False,
    ) -> None:
        """Sends ``messages`` in the caller's open transaction on the system database.

        Raises:
            DBOSNonExistentWorkflowError: a destination does not exist (nothing sent).
        """
        for m in messages:
            refuse_shard_key(m.shard_key)
        writer = writer_for(serialization_type, self.runtime.process.serializer, False)
        outgoing = bulk_send.outgoing_messages(
            [(m.destination_id, m.message, m.topic, m.idempotency_key) for m in messages], writer
        )
        if not outgoing:
            return
        connection: Any = (
            conn_or_session.connection()
            if isinstance(conn_or_session, Session)
            else conn_or_session
        )
        sent = send_bulk_on(connection, outgoing, send_to_forks)
        if sent.outcome == "missing":
            raise DBOSNonExistentWorkflowError(sent.missing or "", "`send` destination")
