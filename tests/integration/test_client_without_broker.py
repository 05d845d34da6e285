"""``DBOSClient(system_database_url)`` with no broker: the enqueue is committed in
PostgreSQL and a worker, told by NOTIFY, publishes it once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celery_durable import DBOS, DBOSClient
from tests.conftest import DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")


@DBOS.workflow(name="brokerless_echo")
def brokerless_echo(value: str) -> str:
    return value


@pytest.fixture
def client() -> Iterator[DBOSClient]:
    client = DBOSClient(DATABASE_URL)
    yield client
    client.destroy()


def _enqueue(client: DBOSClient, value: str) -> str:
    workflow_id = f"brokerless-{uuid.uuid4()}"
    options = {"workflow_name": "brokerless_echo", "queue_name": TEST_QUEUE}
    client.enqueue({**options, "workflow_id": workflow_id}, value)  # type: ignore[typeddict-item]
    return workflow_id


def test_a_worker_publishes_what_a_client_without_broker_enqueued(client: DBOSClient) -> None:
    workflow_id = _enqueue(client, "hello")
    # Well before the recovery sweep's 30 s grace: the NOTIFY did it.
    assert client.retrieve_workflow(workflow_id).get_result(timeout=10) == "hello"


def test_many_enqueues_each_run_once(client: DBOSClient) -> None:
    ids = [_enqueue(client, str(n)) for n in range(10)]
    results = [client.retrieve_workflow(i).get_result(timeout=20) for i in ids]
    assert results == [str(n) for n in range(10)]
    # However many workers heard of it, one published it: one execution each.
    for workflow_id in ids:
        assert client.retrieve_workflow(workflow_id).get_status().recovery_attempts <= 1
