"""DBOS 3.4's ``send_bulk`` and ``send(send_to_forks=True)``, on ``DBOS`` and
``DBOSClient``: many messages in one transaction (all or none), one recorded operation
in workflow code, and delivery to the forks of a destination.

Against real PostgreSQL and the session's Celery worker (Redis). Receivers wait in
``recv`` with a long timeout, so one that finishes was woken by the send.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import DBOS, DBOSClient, SendMessage, SetWorkflowID
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

LONG_WAIT = 300.0
RESULT_TIMEOUT = 60.0


@DBOS.workflow()
def bulk_receiver(topic: str, count: int) -> list[Any]:
    return [DBOS.recv(topic, timeout_seconds=LONG_WAIT) for _ in range(count)]


@DBOS.workflow()
def bulk_sender(first: str, second: str) -> str:
    DBOS.send_bulk([SendMessage(first, "to-first", "t"), SendMessage(second, "to-second", "t")])
    return "sent"


# Workflow ids whose next execution dies after its send (once).
crash: set[str] = set()


class SimulatedCrash(BaseException):
    """An execution that dies here (its process would have): nothing more is recorded."""


@DBOS.workflow()
def bulk_then_crash(destination: str) -> str:
    DBOS.send_bulk([SendMessage(destination, "once", "t")])
    if DBOS.workflow_id in crash:
        crash.discard(DBOS.workflow_id)
        raise SimulatedCrash
    return "done"


@DBOS.workflow()
def empty_bulk_sender() -> str:
    DBOS.send_bulk([])
    DBOS.send_bulk([])
    return "nothing"


@DBOS.workflow()
def sender_to_missing(existing: str, missing: str) -> str:
    try:
        DBOS.send_bulk([SendMessage(existing, "x", "t"), SendMessage(missing, "y", "t")])
    except DBOSNonExistentWorkflowError as error:
        return f"refused: {error.workflow_id}"
    return "sent"


@pytest.fixture(scope="module")
def sql(dbos: type[DBOS]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        yield connection


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def start_receiver(topic: str = "t", count: int = 1) -> Any:
    with SetWorkflowID(new_id("bulk-recv")):
        return DBOS.start_workflow(bulk_receiver, topic, count)


def messages_to(sql: psycopg.Connection[Any], workflow_id: str) -> int:
    row = sql.execute(
        "SELECT count(*) FROM celery_durable.notifications WHERE destination_uuid = %s",
        (workflow_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def waiting_in_recv(sql: psycopg.Connection[Any], workflow_id: str) -> bool:
    row = sql.execute(
        "SELECT wait_key FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchone()
    return row is not None and row[0] == "msg:t"


def test_send_bulk_delivers_every_message_and_wakes_each_receiver() -> None:
    first, second = start_receiver(count=2), start_receiver()
    DBOS.send_bulk(
        [
            SendMessage(first.workflow_id, {"n": 1}, "t"),
            SendMessage(second.workflow_id, {"n": 2}, "t"),
            SendMessage(first.workflow_id, {"n": 3}, "t"),
        ]
    )
    assert first.get_result(timeout=RESULT_TIMEOUT) == [{"n": 1}, {"n": 3}]
    assert second.get_result(timeout=RESULT_TIMEOUT) == [{"n": 2}]


def test_send_bulk_wakes_a_receiver_already_waiting(sql: psycopg.Connection[Any]) -> None:
    receiver = start_receiver()
    wait_until(lambda: waiting_in_recv(sql, receiver.workflow_id), 60, "the receiver's wait")
    DBOS.send_bulk([SendMessage(receiver.workflow_id, "late", "t")])
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["late"]


def test_send_bulk_sends_nothing_when_a_destination_is_missing(
    sql: psycopg.Connection[Any],
) -> None:
    receiver = start_receiver()
    missing = new_id("no-such-workflow")
    with pytest.raises(DBOSNonExistentWorkflowError) as raised:
        DBOS.send_bulk(
            [SendMessage(receiver.workflow_id, "x", "t"), SendMessage(missing, "y", "t")]
        )
    assert raised.value.workflow_id == missing
    assert messages_to(sql, receiver.workflow_id) == 0
    DBOS.send(receiver.workflow_id, "after", "t")
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["after"]


def test_send_bulk_refuses_duplicate_idempotency_keys_and_keys_deliver_once(
    sql: psycopg.Connection[Any],
) -> None:
    receiver = start_receiver(count=2)
    with pytest.raises(DBOSException, match="duplicate idempotency keys: k1"):
        DBOS.send_bulk(
            [
                SendMessage(receiver.workflow_id, "a", "t", idempotency_key="k1"),
                SendMessage(receiver.workflow_id, "b", "t", idempotency_key="k1"),
            ]
        )
    batch = [
        SendMessage(receiver.workflow_id, "a", "t", idempotency_key="k1"),
        SendMessage(receiver.workflow_id, "b", "t", idempotency_key="k2"),
    ]
    DBOS.send_bulk(batch)
    DBOS.send_bulk(batch)  # a retried request: nothing more is delivered
    assert messages_to(sql, receiver.workflow_id) == 2
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["a", "b"]


def test_send_bulk_in_workflow_code_is_one_recorded_operation() -> None:
    first, second = start_receiver(), start_receiver()
    with SetWorkflowID(new_id("bulk-sender")):
        sender = DBOS.start_workflow(bulk_sender, first.workflow_id, second.workflow_id)
    assert sender.get_result(timeout=RESULT_TIMEOUT) == "sent"
    assert first.get_result(timeout=RESULT_TIMEOUT) == ["to-first"]
    assert second.get_result(timeout=RESULT_TIMEOUT) == ["to-second"]
    steps = DBOS.list_workflow_steps(sender.workflow_id)
    assert [step["function_name"] for step in steps] == ["DBOS.send_bulk"]


def test_a_missing_destination_in_workflow_code_is_the_operations_recorded_error(
    sql: psycopg.Connection[Any],
) -> None:
    receiver = start_receiver()
    missing = new_id("no-such-workflow")
    with SetWorkflowID(new_id("bulk-missing")):
        sender = DBOS.start_workflow(sender_to_missing, receiver.workflow_id, missing)
    assert sender.get_result(timeout=RESULT_TIMEOUT) == f"refused: {missing}"
    [step] = DBOS.list_workflow_steps(sender.workflow_id)
    assert step["function_name"] == "DBOS.send_bulk"
    assert isinstance(step["error"], DBOSNonExistentWorkflowError)
    assert messages_to(sql, receiver.workflow_id) == 0
    DBOS.send(receiver.workflow_id, "cleanup", "t")
    receiver.get_result(timeout=RESULT_TIMEOUT)


def test_send_to_forks_also_delivers_to_every_fork(sql: psycopg.Connection[Any]) -> None:
    original = start_receiver()
    wait_until(lambda: waiting_in_recv(sql, original.workflow_id), 60, "the original's wait")
    fork = DBOS.fork_workflow(original.workflow_id, 1)
    fork_of_fork = DBOS.fork_workflow(fork.workflow_id, 1)
    DBOS.send(original.workflow_id, "plain", "t")  # without send_to_forks: the original only
    assert original.get_result(timeout=RESULT_TIMEOUT) == ["plain"]
    assert messages_to(sql, fork.workflow_id) == 0
    DBOS.send(original.workflow_id, "everyone", "t", send_to_forks=True, idempotency_key="e")
    assert fork.get_result(timeout=RESULT_TIMEOUT) == ["everyone"]
    assert fork_of_fork.get_result(timeout=RESULT_TIMEOUT) == ["everyone"]
    assert messages_to(sql, original.workflow_id) == 2


def test_send_bulk_to_forks(sql: psycopg.Connection[Any]) -> None:
    original = start_receiver()
    fork = DBOS.fork_workflow(original.workflow_id, 1)
    DBOS.send_bulk([SendMessage(original.workflow_id, "both", "t")], send_to_forks=True)
    assert original.get_result(timeout=RESULT_TIMEOUT) == ["both"]
    assert fork.get_result(timeout=RESULT_TIMEOUT) == ["both"]


def test_the_client_sends_in_bulk_and_to_forks(client: DBOSClient) -> None:
    first, second = start_receiver(), start_receiver()
    client.send_bulk(
        [SendMessage(first.workflow_id, 1, "t"), SendMessage(second.workflow_id, 2, "t")]
    )
    assert first.get_result(timeout=RESULT_TIMEOUT) == [1]
    assert second.get_result(timeout=RESULT_TIMEOUT) == [2]
    original = start_receiver()
    fork = DBOS.fork_workflow(original.workflow_id, 1)
    client.send(original.workflow_id, "hi", "t", send_to_forks=True)
    assert original.get_result(timeout=RESULT_TIMEOUT) == ["hi"]
    assert fork.get_result(timeout=RESULT_TIMEOUT) == ["hi"]


def test_the_async_twins(client: DBOSClient) -> None:
    first, second = start_receiver(), start_receiver()

    async def send() -> None:
        await DBOS.send_bulk_async([SendMessage(first.workflow_id, "a", "t")])
        await client.send_bulk_async([SendMessage(second.workflow_id, "b", "t")])

    asyncio.run(send())
    assert first.get_result(timeout=RESULT_TIMEOUT) == ["a"]
    assert second.get_result(timeout=RESULT_TIMEOUT) == ["b"]


def test_a_shard_key_on_a_message_is_refused_before_anything_is_sent(
    sql: psycopg.Connection[Any],
) -> None:
    receiver = start_receiver()
    with pytest.raises(DBOSException, match="sharding is not supported"):
        DBOS.send_bulk(
            [
                SendMessage(receiver.workflow_id, "x", "t"),
                SendMessage(receiver.workflow_id, "y", "t", shard_key="s1"),
            ]
        )
    assert messages_to(sql, receiver.workflow_id) == 0
    DBOS.send(receiver.workflow_id, "ok", "t", shard_key=None)
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["ok"]


def test_an_empty_bulk_sends_nothing_and_is_still_an_operation_in_workflow_code() -> None:
    DBOS.send_bulk([])
    with SetWorkflowID(new_id("bulk-empty")):
        sender = DBOS.start_workflow(empty_bulk_sender)
    assert sender.get_result(timeout=RESULT_TIMEOUT) == "nothing"
    steps = DBOS.list_workflow_steps(sender.workflow_id)
    assert [step["function_name"] for step in steps] == ["DBOS.send_bulk", "DBOS.send_bulk"]


def test_a_replayed_send_bulk_sends_nothing_again(sql: psycopg.Connection[Any]) -> None:
    receiver = start_receiver()
    workflow_id = new_id("bulk-crash")
    crash.add(workflow_id)
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        bulk_then_crash(receiver.workflow_id)
    with SetWorkflowID(workflow_id):
        assert bulk_then_crash(receiver.workflow_id) == "done"
    assert messages_to(sql, receiver.workflow_id) == 1
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["once"]
