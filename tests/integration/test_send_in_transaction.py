"""DBOS 3.4's ``DBOSClient.send_in_transaction`` and ``send_bulk_in_transaction``: a
message sent in a transaction the caller owns on the system database is visible once
it commits, nothing is sent on a rollback, and a receiver waiting in ``recv`` (its
worker slot freed) is published by a worker's relay when the transaction commits.

Against real PostgreSQL and the session's Celery worker (Redis); the receivers wait
300 s, so one that finishes within 60 s was woken by the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from celery_durable import (
    DBOS,
    DBOSClient,
    SendMessage,
    SetWorkflowID,
    WorkflowSerializationFormat,
)
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from tests.conftest import DATABASE_URL
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

LONG_WAIT = 300.0
RESULT_TIMEOUT = 60.0


@DBOS.workflow()
def txn_receiver(count: int) -> list[Any]:
    return [DBOS.recv("t", timeout_seconds=LONG_WAIT) for _ in range(count)]


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    client = DBOSClient(DATABASE_URL)
    yield client
    client.destroy()


@pytest.fixture(scope="module")
def engine(dbos: type[DBOS]) -> Iterator[sa.Engine]:
    engine = sa.create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://"))
    yield engine
    engine.dispose()


def waiting_receiver(count: int = 1) -> Any:
    with SetWorkflowID(f"txn-{uuid.uuid4().hex[:12]}"):
        handle = DBOS.start_workflow(txn_receiver, count)
    wait_until(lambda: wait_key(handle.workflow_id) == "msg:t", 60, "the receiver's wait")
    return handle


def wait_key(workflow_id: str) -> str | None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        row = connection.execute(
            "SELECT wait_key FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
    return None if row is None else row[0]


def messages_to(connection: sa.Connection, workflow_id: str) -> int:
    return int(
        connection.execute(
            sa.text(
                "SELECT count(*) FROM celery_durable.notifications WHERE destination_uuid = :w"
            ),
            {"w": workflow_id},
        ).scalar_one()
    )


def test_a_committed_send_wakes_the_receiver(client: DBOSClient, engine: sa.Engine) -> None:
    receiver = waiting_receiver()
    with engine.connect() as connection, connection.begin():
        client.send_in_transaction(connection, receiver.workflow_id, "hello", "t")
        assert messages_to(connection, receiver.workflow_id) == 1
        with engine.connect() as other:  # not visible before the commit
            assert messages_to(other, receiver.workflow_id) == 0
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["hello"]


def test_a_rolled_back_send_sends_nothing(client: DBOSClient, engine: sa.Engine) -> None:
    receiver = waiting_receiver()
    with engine.connect() as connection:
        transaction = connection.begin()
        client.send_in_transaction(connection, receiver.workflow_id, "lost", "t")
        transaction.rollback()
        assert messages_to(connection, receiver.workflow_id) == 0
    client.send(receiver.workflow_id, "delivered", "t")
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["delivered"]


def test_a_session_after_its_own_statement_and_an_idempotency_key(
    client: DBOSClient, engine: sa.Engine
) -> None:
    receiver = waiting_receiver()
    with Session(engine) as session, session.begin():
        session.execute(sa.text("SELECT 1"))
        client.send_in_transaction(session, receiver.workflow_id, "once", "t", "key-1")
        client.send_in_transaction(session, receiver.workflow_id, "once", "t", "key-1")
        assert messages_to(session.connection(), receiver.workflow_id) == 1
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["once"]


def test_bulk_in_a_transaction_all_or_none(client: DBOSClient, engine: sa.Engine) -> None:
    first, second = waiting_receiver(), waiting_receiver()
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    with engine.connect() as connection, connection.begin():
        with pytest.raises(DBOSNonExistentWorkflowError):
            client.send_bulk_in_transaction(
                connection, [SendMessage(first.workflow_id, 0, "t"), SendMessage(missing, 0, "t")]
            )
        assert messages_to(connection, first.workflow_id) == 0
        client.send_bulk_in_transaction(
            connection,
            [SendMessage(first.workflow_id, 1, "t"), SendMessage(second.workflow_id, 2, "t")],
        )
    assert first.get_result(timeout=RESULT_TIMEOUT) == [1]
    assert second.get_result(timeout=RESULT_TIMEOUT) == [2]


def test_a_shard_key_is_refused(client: DBOSClient, engine: sa.Engine) -> None:
    with (
        engine.connect() as connection,
        connection.begin(),
        pytest.raises(DBOSException, match="sharding is not supported"),
    ):
        client.send_in_transaction(connection, "any", 1, "t", shard_key="s1")


def test_portable_and_to_forks_in_a_transaction(client: DBOSClient, engine: sa.Engine) -> None:
    original = waiting_receiver()
    fork = DBOS.fork_workflow(original.workflow_id, 1)
    with engine.connect() as connection, connection.begin():
        client.send_bulk_in_transaction(
            connection,
            [SendMessage(original.workflow_id, (1, 2), "t")],
            serialization_type=WorkflowSerializationFormat.PORTABLE,
            send_to_forks=True,
        )
    assert original.get_result(timeout=RESULT_TIMEOUT) == [[1, 2]]
    assert fork.get_result(timeout=RESULT_TIMEOUT) == [[1, 2]]
