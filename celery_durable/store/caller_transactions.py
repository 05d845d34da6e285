"""Writes inside a transaction the caller owns (DBOSClient's ``*_in_transaction``).

The caller hands over a SQLAlchemy ``Connection`` or ``Session`` on the system
database, in a transaction it commits or rolls back. The same statements as the
client's own writes run on it; what would be published afterwards (a new workflow, a
waiting workflow a message made due) is a ``pg_notify`` in the same transaction, which
PostgreSQL delivers only at commit: the workers' relay publishes it then (the recovery
sweep is the fallback). A rollback leaves nothing, neither rows nor messages.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, exc, text
from sqlalchemy.orm import Session

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSException, DBOSWorkflowFunctionNotFoundError
from celery_durable.store.channels import ENQUEUED_CHANNEL
from celery_durable.store.driver_errors import system_error, violates
from celery_durable.store.execution_messages import sent_from_row
from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.rows import InsertedWorkflow, NewWorkflow, Sent
from celery_durable.store.sql import messaging, recovery, workflows
from celery_durable.store.urls import parse
from celery_durable.store.workflow_store import conflict, deduplicated, new_workflow_params

_WHERE_AM_I = text(
    f"SELECT current_database() AS name, "
    f"to_regclass('{SCHEMA}.workflow_status') IS NOT NULL AS has_tables"
)


def caller_connection(conn_or_session: Any) -> Connection:
    """The connection of the caller's transaction (a Session's, for a Session).

    Raises:
        DBOSException: neither a SQLAlchemy Connection nor a Session (an async one is
            bridged with ``run_sync``, as in DBOS).
    """
    if isinstance(conn_or_session, Session):
        return conn_or_session.connection()
    if isinstance(conn_or_session, Connection):
        return conn_or_session
    raise DBOSException(
        "conn_or_session must be a synchronous SQLAlchemy Connection or Session, not "
        f"{type(conn_or_session).__name__} (from async code: "
        "await async_conn.run_sync(lambda conn: client.enqueue_in_transaction(conn, ...)))"
    )


class CallerTransactionStore:
    """The client's writes on a caller's connection to the system database at ``url``."""

    def __init__(self, url: str) -> None:
        self._database = parse(url).database

    def check_system_database(self, connection: Connection) -> None:
        """Raises ``DBOSException`` unless ``connection`` is on this system database (its
        database name, and celery_durable's tables in it)."""
        try:
            row = connection.execute(_WHERE_AM_I).one()
        except exc.DBAPIError as error:
            raise system_error("checking the caller's connection", error) from error
        if not row.has_tables or (self._database and row.name != self._database):
            raise DBOSException(
                f"The connection is on database {row.name!r}, not on the client's system "
                f"database {self._database!r} (with celery_durable's tables): a "
                "transaction can enqueue or send only on the system database (open it on "
                "the client's system_database_url)"
            )

    def insert_workflow(self, connection: Connection, row: NewWorkflow) -> InsertedWorkflow:
        """Inserts the workflow's row, and, when it is new and not delayed, the
        notification that has a worker publish it at commit.

        Raises:
            DBOSQueueDeduplicatedError: the deduplication id is taken (the caller's
                transaction is aborted: roll it back).
            DBOSConflictingWorkflowError: the id belongs to another workflow function.
        """
        try:
            found = connection.execute(
                workflows.INSERT_WORKFLOW,
                new_workflow_params(row)
                | {
                    "status": row.status,
                    "now": now_epoch_ms(),
                    "require_registered": row.require_registered,
                },
            ).first()
        except exc.IntegrityError as error:
            if violates(error, "deduplication_idx"):
                raise deduplicated(row) from error
            raise system_error(f"inserting workflow {row.workflow_uuid}", error) from error
        if found is None:
            if row.require_registered:
                raise DBOSWorkflowFunctionNotFoundError(
                    row.name,
                    f"No worker has registered workflow {row.name!r}: start a worker that "
                    'imports it first, or enqueue with {"allow_unregistered": True}',
                )
            raise DBOSException(f"Workflow {row.workflow_uuid} was neither inserted nor found")
        if not found.inserted and found.name != row.name:
            raise conflict(row.workflow_uuid, found.name, row.name)
        if found.inserted and row.delay_until_epoch_ms is None:
            self._notify(connection, row.workflow_uuid, 0)
        return InsertedWorkflow(
            inserted=found.inserted,
            name=found.name,
            status=found.status,
            output=found.output,
            error=found.error,
        )

    def send_message(
        self, connection: Connection, destination: str, topic: str, message_uuid: str, message: str
    ) -> Sent:
        """Sends a message (idempotent on ``message_uuid``); a destination it makes due
        is published by a worker at commit."""
        sent = sent_from_row(
            connection.execute(
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
            ).one()
        )
        if sent.wake is not None:
            self._notify(connection, destination, sent.wake.generation)
        return sent

    def _notify(self, connection: Connection, workflow_id: str, generation: int) -> None:
        connection.execute(
            recovery.NOTIFY_ENQUEUED,
            {"channel": ENQUEUED_CHANNEL, "payload": f"{workflow_id}:{generation}"},
        )
