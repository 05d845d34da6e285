"""DBOS 3.4's ``shard_key=``: celery_durable's system database is not sharded, so every
operation that takes a shard key accepts None (and works as without it) and refuses any
other key with a clear error, before doing anything.

Against real PostgreSQL and the session's Celery worker (Redis).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import DBOSException
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.usefixtures("worker")

RESULT_TIMEOUT = 60.0
SHARDING = r"sharding is not supported by celery_durable \(got shard_key='tenant-1'"


@DBOS.workflow()
def shard_events() -> str | None:
    DBOS.set_event("k", "v")
    return DBOS.shard_key


@DBOS.workflow()
def shard_scheduled(scheduled_time: Any, context: Any) -> None:
    return None


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    client = DBOSClient(DATABASE_URL)
    yield client
    client.destroy()


@pytest.fixture(scope="module")
def finished(worker: Any) -> str:
    with SetWorkflowID(f"shard-{uuid.uuid4().hex[:12]}"):
        handle = DBOS.start_workflow(shard_events)
    assert handle.get_result(timeout=RESULT_TIMEOUT) is None  # DBOS.shard_key in a workflow
    return handle.workflow_id


def refusals(workflow_id: str, client: DBOSClient) -> dict[str, Callable[[], Any]]:
    key = "tenant-1"
    return {
        "DBOS.get_event": lambda: DBOS.get_event(workflow_id, "k", shard_key=key),
        "DBOS.get_event_async": lambda: asyncio.run(
            DBOS.get_event_async(workflow_id, "k", shard_key=key)
        ),
        "DBOS.get_all_events": lambda: DBOS.get_all_events(workflow_id, shard_key=key),
        "DBOS.get_all_events_async": lambda: asyncio.run(
            DBOS.get_all_events_async(workflow_id, shard_key=key)
        ),
        "DBOS.read_stream": lambda: DBOS.read_stream(workflow_id, "s", shard_key=key),
        "DBOS.read_stream_async": lambda: DBOS.read_stream_async(workflow_id, "s", shard_key=key),
        "DBOS.retrieve_workflow": lambda: DBOS.retrieve_workflow(workflow_id, shard_key=key),
        "DBOS.send": lambda: DBOS.send(workflow_id, 1, shard_key=key),
        "DBOS.send_async": lambda: asyncio.run(DBOS.send_async(workflow_id, 1, shard_key=key)),
        "DBOS.create_schedule": lambda: DBOS.create_schedule(
            schedule_name="never",
            workflow_fn=shard_scheduled,
            schedule="0 0 1 1 *",
            shard_key=key,
        ),
        "DBOS.create_schedule_async": lambda: asyncio.run(
            DBOS.create_schedule_async(
                schedule_name="never",
                workflow_fn=shard_scheduled,
                schedule="0 0 1 1 *",
                shard_key=key,
            )
        ),
        "client.get_event": lambda: client.get_event(workflow_id, "k", shard_key=key),
        "client.get_all_events": lambda: client.get_all_events(workflow_id, shard_key=key),
        "client.read_stream": lambda: client.read_stream(workflow_id, "s", shard_key=key),
        "client.retrieve_workflow": lambda: client.retrieve_workflow(workflow_id, shard_key=key),
        "client.send": lambda: client.send(workflow_id, 1, shard_key=key),
        "client.send_async": lambda: asyncio.run(client.send_async(workflow_id, 1, shard_key=key)),
    }


def test_every_shard_key_is_refused_clearly(finished: str, client: DBOSClient) -> None:
    unrefused = []
    for name, call in refusals(finished, client).items():
        try:
            call()
        except DBOSException as error:
            assert "sharding is not supported" in str(error), name
        else:
            unrefused.append(name)
    assert unrefused == []
    assert DBOS.get_schedule("never") is None  # nothing was written
    with pytest.raises(DBOSException, match=SHARDING):
        DBOS.get_event(finished, "k", shard_key="tenant-1")


def test_a_none_shard_key_is_as_without_one(finished: str, client: DBOSClient) -> None:
    assert DBOS.get_event(finished, "k", shard_key=None) == "v"
    assert client.get_event(finished, "k", shard_key=None) == "v"
    assert DBOS.get_all_events(finished, shard_key=None) == {"k": "v"}
    assert client.get_all_events(finished, shard_key=None) == {"k": "v"}
    assert DBOS.retrieve_workflow(finished, shard_key=None).get_status().status == "SUCCESS"
    assert client.retrieve_workflow(finished, shard_key=None).workflow_id == finished
    assert list(DBOS.read_stream(finished, "s", shard_key=None)) == []
    assert DBOS.shard_key is None
