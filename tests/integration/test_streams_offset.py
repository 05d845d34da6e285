"""DBOS 3.4's ``read_stream_offset`` (one value at an offset, waiting for it) and
``read_stream(polling_interval_sec=)``, on ``DBOS`` and ``DBOSClient``.

Against real PostgreSQL and the session's Celery worker (Redis). A writer that holds
its stream open waits in ``recv`` for a message telling it to go on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import DBOSException, DBOSStreamTimeoutError
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.usefixtures("worker")

LONG_WAIT = 300.0
RESULT_TIMEOUT = 60.0


@DBOS.workflow()
def offset_writer(values: list[Any], close: bool) -> str:
    for value in values:
        DBOS.write_stream("s", value)
    if close:
        DBOS.close_stream("s")
    return "written"


@DBOS.workflow()
def offset_slow_writer() -> str:
    DBOS.write_stream("s", "first")
    DBOS.recv("go", timeout_seconds=LONG_WAIT)
    DBOS.write_stream("s", "second")
    return "written"


@DBOS.workflow()
def offset_reader(target: str, offset: int) -> Any:
    return DBOS.read_stream_offset(target, "s", offset, timeout_seconds=RESULT_TIMEOUT)


@DBOS.workflow()
async def offset_reader_async(target: str) -> list[Any]:
    one = await DBOS.read_stream_offset_async(target, "s", 1, timeout_seconds=RESULT_TIMEOUT)
    every = [value async for value in DBOS.read_stream_async(target, "s")]
    return [one, every]


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    client = DBOSClient(DATABASE_URL)
    yield client
    client.destroy()


def start(workflow: Any, *args: Any) -> Any:
    with SetWorkflowID(f"offset-{uuid.uuid4().hex[:12]}"):
        return DBOS.start_workflow(workflow, *args)


def test_read_stream_offset_returns_the_value_at_the_offset() -> None:
    writer = start(offset_writer, ["a", {"b": 1}, None], True)
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 1) == {"b": 1}
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 0) == "a"
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 2) is None  # a value like any
    writer.get_result(timeout=RESULT_TIMEOUT)


def test_read_stream_offset_waits_for_a_value_written_later() -> None:
    writer = start(offset_slow_writer)
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 0) == "first"
    DBOS.send(writer.workflow_id, "go", "go")
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 1, polling_interval_sec=0.05) == (
        "second"
    )
    assert writer.get_result(timeout=RESULT_TIMEOUT) == "written"


def test_a_stream_that_ends_before_the_offset_raises() -> None:
    closed = start(offset_writer, ["only"], True)
    with pytest.raises(DBOSStreamTimeoutError, match="ended before a value at offset 1"):
        DBOS.read_stream_offset(closed.workflow_id, "s", 1)
    finished = start(offset_writer, ["only"], False)
    finished.get_result(timeout=RESULT_TIMEOUT)
    with pytest.raises(DBOSStreamTimeoutError, match="ended before a value at offset 3"):
        DBOS.read_stream_offset(finished.workflow_id, "s", 3)


def test_a_value_that_does_not_come_in_time_raises() -> None:
    writer = start(offset_slow_writer)
    assert DBOS.read_stream_offset(writer.workflow_id, "s", 0) == "first"
    with pytest.raises(DBOSStreamTimeoutError, match=r"within 0\.2 seconds"):
        DBOS.read_stream_offset(writer.workflow_id, "s", 1, timeout_seconds=0.2)
    DBOS.send(writer.workflow_id, "go", "go")
    writer.get_result(timeout=RESULT_TIMEOUT)


def test_in_workflow_code_it_is_a_recorded_operation() -> None:
    writer = start(offset_writer, ["x", "y"], True)
    reader = start(offset_reader, writer.workflow_id, 1)
    assert reader.get_result(timeout=RESULT_TIMEOUT) == "y"
    [step] = DBOS.list_workflow_steps(reader.workflow_id)
    assert (step["function_name"], step["output"]) == ("DBOS.readStreamOffset", "y")


def test_an_async_workflows_reads_are_recorded_operations_too() -> None:
    writer = start(offset_writer, ["x", "y"], True)
    reader = start(offset_reader_async, writer.workflow_id)
    assert reader.get_result(timeout=RESULT_TIMEOUT) == ["y", ["x", "y"]]
    steps = DBOS.list_workflow_steps(reader.workflow_id)
    # The stream's end is recorded too (DBOS's close marker), so a replay stops there.
    assert [(s["function_name"], s["output"]) for s in steps] == [
        ("DBOS.readStreamOffset", "y"),
        ("DBOS.readStream", "x"),
        ("DBOS.readStream", "y"),
        ("DBOS.readStream", "__DBOS_STREAM_CLOSED__"),
    ]


def test_the_client_and_the_async_twins(client: DBOSClient) -> None:
    writer = start(offset_writer, [10, 20, 30], True)
    assert client.read_stream_offset(writer.workflow_id, "s", 2) == 30

    async def read() -> tuple[Any, Any]:
        mine = await DBOS.read_stream_offset_async(writer.workflow_id, "s", 0)
        theirs = await client.read_stream_offset_async(writer.workflow_id, "s", 1)
        return mine, theirs

    assert asyncio.run(read()) == (10, 20)
    with pytest.raises(DBOSStreamTimeoutError):
        asyncio.run(client.read_stream_offset_async(writer.workflow_id, "s", 3))


def test_read_stream_takes_a_polling_interval(client: DBOSClient) -> None:
    writer = start(offset_writer, [1, 2], True)
    assert list(DBOS.read_stream(writer.workflow_id, "s", polling_interval_sec=0.01)) == [1, 2]
    assert list(client.read_stream(writer.workflow_id, "s", offset=1, polling_interval_sec=2)) == [
        2
    ]

    async def read() -> list[Any]:
        stream = DBOS.read_stream_async(writer.workflow_id, "s", polling_interval_sec=0.5)
        return [value async for value in stream]

    assert asyncio.run(read()) == [1, 2]
    with pytest.raises(DBOSException, match=r"polling_interval_sec must be a number >= 0\.001"):
        list(DBOS.read_stream(writer.workflow_id, "s", polling_interval_sec=0))
    with pytest.raises(DBOSException, match=r"polling_interval_sec must be a number >= 0\.001"):
        DBOS.read_stream_offset(writer.workflow_id, "s", 0, polling_interval_sec=0.0001)


def test_a_shard_key_is_refused_on_stream_reads(client: DBOSClient) -> None:
    writer = start(offset_writer, [1], True)
    with pytest.raises(DBOSException, match="sharding is not supported"):
        DBOS.read_stream_offset(writer.workflow_id, "s", 0, shard_key="s1")
    with pytest.raises(DBOSException, match="sharding is not supported"):
        client.read_stream(writer.workflow_id, "s", shard_key="s1")
    assert client.read_stream_offset(writer.workflow_id, "s", 0, shard_key=None) == 1
