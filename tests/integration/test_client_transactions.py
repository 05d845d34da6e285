"""DBOSClient's ``enqueue_in_transaction``, ``send_in_transaction`` and
``send_bulk_in_transaction``: the workflow or the message exists exactly when the
caller's own transaction commits, with the caller's other writes; a worker then runs
or wakes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from celery_durable import DBOS, DBOSClient, EnqueueOptions
from celery_durable.error import (
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowIDInUseError,
)
from tests.conftest import DATABASE_URL, TEST_QUEUE, admin_url

pytestmark = pytest.mark.usefixtures("worker")

ORDERS = "public.client_tx_orders"


@DBOS.workflow(name="client_tx_echo")
def client_tx_echo(value: str) -> str:
    return f"echo:{value}"


@DBOS.workflow(name="client_tx_receiver")
def client_tx_receiver(count: int) -> list[Any]:
    return [DBOS.recv("orders", timeout_seconds=60) for _ in range(count)]


@dataclass
class Message:
    """A message as DBOS's SendMessage has it."""

    destination_id: str
    message: Any
    topic: str | None = None
    idempotency_key: str | None = None
    shard_key: str | None = None


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The application's own engine on the system database, with a table of its own."""
    engine = create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE IF NOT EXISTS {ORDERS} (id text PRIMARY KEY)"))
    yield engine
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {ORDERS}"))
    engine.dispose()


@pytest.fixture
def client() -> Iterator[DBOSClient]:
    client = DBOSClient(DATABASE_URL)
    yield client
    client.destroy()


def options(workflow_id: str, **more: Any) -> EnqueueOptions:
    return {
        "workflow_name": "client_tx_echo",
        "queue_name": TEST_QUEUE,
        "workflow_id": workflow_id,
        **more,
    }  # type: ignore[return-value]


def exists(client: DBOSClient, workflow_id: str) -> bool:
    return bool(client.list_workflows(workflow_ids=[workflow_id]))


def test_an_enqueue_commits_with_the_callers_writes(client: DBOSClient, engine: Engine) -> None:
    workflow_id = f"tx-{uuid.uuid4()}"
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {ORDERS} VALUES (:id)"), {"id": workflow_id})
        handle = client.enqueue_in_transaction(connection, options(workflow_id), "order")
        assert handle.workflow_id == workflow_id
        # Not yet committed: nobody else sees it, and no worker runs it.
        assert not exists(client, workflow_id)
    assert handle.get_result(timeout=20) == "echo:order"
    assert handle.get_status().recovery_attempts <= 1


def test_a_rollback_leaves_neither_the_workflow_nor_its_run(
    client: DBOSClient, engine: Engine
) -> None:
    workflow_id = f"tx-{uuid.uuid4()}"
    with engine.connect() as connection, connection.begin() as transaction:
        client.enqueue_in_transaction(connection, options(workflow_id), "never")
        transaction.rollback()
    # Then a commit of the same id in a later transaction runs once.
    assert not exists(client, workflow_id)
    with Session(engine) as session, session.begin():
        handle = client.enqueue_in_transaction(session, options(workflow_id), "session")
    assert handle.get_result(timeout=20) == "echo:session"
    # The id is taken now: return-existing by default, reject on request.
    with engine.begin() as connection:
        again = client.enqueue_in_transaction(connection, options(workflow_id), "again")
    assert again.get_result(timeout=20) == "echo:session"
    with pytest.raises(DBOSWorkflowIDInUseError), engine.begin() as connection:
        client.enqueue_in_transaction(
            connection, options(workflow_id, workflow_id_reuse_policy="reject"), "x"
        )


def test_messages_arrive_when_the_transaction_commits(client: DBOSClient, engine: Engine) -> None:
    receiver = client.enqueue({"workflow_name": "client_tx_receiver", "queue_name": TEST_QUEUE}, 3)
    destination = receiver.workflow_id
    with engine.connect() as connection, connection.begin() as transaction:
        client.send_in_transaction(connection, destination, "rolled back", "orders")
        transaction.rollback()
    with engine.begin() as connection:
        client.send_in_transaction(connection, destination, "first", "orders", "key-1")
        client.send_bulk_in_transaction(
            connection,
            [
                Message(destination, "second", "orders"),
                Message(destination, "first again", "orders", idempotency_key="key-1"),
                Message(destination, "third", "orders"),
            ],
        )
    assert receiver.get_result(timeout=30) == ["first", "second", "third"]


def test_a_missing_destination_raises(client: DBOSClient, engine: Engine) -> None:
    with pytest.raises(DBOSNonExistentWorkflowError), engine.begin() as connection:
        client.send_in_transaction(connection, f"missing-{uuid.uuid4()}", "lost")


def test_what_cannot_be_honoured_raises(client: DBOSClient, engine: Engine) -> None:
    workflow_id = f"tx-{uuid.uuid4()}"
    with engine.connect() as connection:
        with pytest.raises(DBOSException, match="return-existing"):
            client.enqueue_in_transaction(
                connection, options(workflow_id, duplication_policy="return-existing"), "x"
            )
        with pytest.raises(DBOSException, match="shard key requires a sharded system database"):
            client.send_in_transaction(connection, workflow_id, "x", shard_key="s")
    with pytest.raises(DBOSException, match="Connection or Session"):
        client.enqueue_in_transaction("not a connection", options(workflow_id), "x")  # type: ignore[arg-type]
    assert not exists(client, workflow_id)


def test_a_connection_to_another_database_is_refused(client: DBOSClient) -> None:
    other = create_engine(
        admin_url(DATABASE_URL).replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        with other.begin() as connection:
            with pytest.raises(DBOSException, match="not on the client's system database"):
                client.enqueue_in_transaction(connection, options(f"tx-{uuid.uuid4()}"), "x")
            with pytest.raises(DBOSException, match="not on the client's system database"):
                client.send_in_transaction(connection, "anyone", "x")
    finally:
        other.dispose()


def test_deduplication_inside_a_transaction(client: DBOSClient, engine: Engine) -> None:
    first_id, second_id = f"tx-{uuid.uuid4()}", f"tx-{uuid.uuid4()}"
    dedup = f"dedup-{first_id}"
    with engine.begin() as connection:
        handle = client.enqueue_in_transaction(
            connection, options(first_id, deduplication_id=dedup), "abc"
        )
        # The same id again in the same transaction: the same workflow.
        again = client.enqueue_in_transaction(
            connection, options(first_id, deduplication_id=dedup), "def"
        )
    assert again.workflow_id == handle.workflow_id
    with pytest.raises(DBOSQueueDeduplicatedError, match=dedup), engine.begin() as connection:
        client.enqueue_in_transaction(connection, options(second_id, deduplication_id=dedup), "x")
    assert handle.get_result(timeout=20) == "echo:abc"
    assert not exists(client, second_id)


def test_an_async_transaction_bridges_with_run_sync(client: DBOSClient) -> None:
    workflow_id = f"tx-{uuid.uuid4()}"

    async def enqueue() -> None:
        async_engine = create_async_engine(
            DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        try:
            async with async_engine.connect() as connection, connection.begin():
                await connection.run_sync(
                    lambda sync: client.enqueue_in_transaction(sync, options(workflow_id), "async")
                )
        finally:
            await async_engine.dispose()

    asyncio.run(enqueue())
    assert client.retrieve_workflow(workflow_id).get_result(timeout=20) == "echo:async"
