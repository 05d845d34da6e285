"""Workflow streams: DBOS's ``write_stream``, ``close_stream`` and ``read_stream``.

A stream is an ordered list of values under a key of a workflow, from offset 0. A
reader gets every value in order and stops at the close marker or, once the writer has
finished, at the end of what it wrote. Writes in workflow code are durable operations
(a replay does not write again); a step's writes are part of the step, as in DBOS.
Readers outside a workflow wait for the database's notification; in workflow code a
read is checkpointed value by value (``DBOS.readStream``, and one more for the end),
waiting in-process as DBOS's does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from celery_durable.core.serialization import Serializer, writer_for
from celery_durable.engine import checkpoints
from celery_durable.engine.context import (
    WorkflowContext,
    current_step,
    current_workflow,
    in_workflow_code,
)
from celery_durable.engine.mailbox import record_outcome, require_id
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError, DBOSStreamTimeoutError
from celery_durable.store.channels import STREAMS_CHANNEL
from celery_durable.store.listener import FALLBACK_SECONDS

# DBOS's close marker: a value like any other, which ends every reader.
STREAM_CLOSED = "__DBOS_STREAM_CLOSED__"
WRITE_NAME = "DBOS.writeStream"
CLOSE_NAME = "DBOS.closeStream"
READ_NAME = "DBOS.readStream"
READ_OFFSET_NAME = "DBOS.readStreamOffset"
ACTIVE = ("ENQUEUED", "PENDING")


def write_stream(key: str, value: Any, serialization_type: object = None) -> None:
    """``DBOS.write_stream``: appends ``value`` to this workflow's stream ``key``."""
    _write(key, value, WRITE_NAME, "write_stream()", serialization_type)


def close_stream(key: str) -> None:
    """``DBOS.close_stream``: readers stop after the values written so far."""
    _write(key, STREAM_CLOSED, CLOSE_NAME, "close_stream()")


def _write(key: str, value: Any, name: str, label: str, serialization_type: object = None) -> None:
    if not isinstance(key, str):
        raise DBOSException(f"A stream key must be a string, not {key!r}")
    workflow = current_workflow.get()
    step = current_step.get()
    if workflow is None:
        raise DBOSException(f"{label} must be called from within a workflow or step")
    if name == CLOSE_NAME:
        text = workflow.serializer.dumps(value)
    else:
        writer = writer_for(serialization_type, workflow.serializer, workflow.portable)
        text = writer.dumps(value)
    record_name: str | None = name
    if step is not None:
        assert step.step_id is not None
        function_id, record_name = step.step_id, None
    else:
        function_id = workflow.next_function_id()
        recorded = workflow.checkpoints.get(function_id)
        if recorded is not None:
            checkpoints.expect_name(workflow, function_id, name, recorded.function_name)
            return
    with checkpoints.system_database_failure_reschedules():
        workflow.execution.messages.write_stream(
            key=key, value=text, function_id=function_id, record_name=record_name
        )


@dataclass
class _Reader:
    """One reader's position; ``next`` says what to do: a value, the end, or a wait.

    Shared by the synchronous and asynchronous readers (which differ only in how they
    sleep and call the database).
    """

    store: EngineStore
    serializer: Serializer
    workflow_id: str
    key: str
    offset: int
    timeout_seconds: float | None
    polling_interval: float = FALLBACK_SECONDS
    deadline: float | None = None

    def __post_init__(self) -> None:
        self._restart_timeout()

    def _restart_timeout(self) -> None:
        if self.timeout_seconds is not None:
            self.deadline = time.monotonic() + self.timeout_seconds

    def next(self) -> tuple[str, Any]:
        """``("value", v)``, ``("end", None)`` or ``("wait", seconds)``."""
        row = self.store.messages.read_stream(self.workflow_id, self.key, self.offset)
        if row is None:
            raise DBOSNonExistentWorkflowError("target", self.workflow_id)
        status, text = row
        if text is not None:
            value = self.serializer.loads(text)
            if isinstance(value, str) and value == STREAM_CLOSED:
                return "end", None
            self.offset += 1
            self._restart_timeout()
            return "value", value
        # One snapshot: a finished writer wrote everything it will before finishing.
        if status not in ACTIVE:
            return "end", None
        wait = self.polling_interval
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise DBOSStreamTimeoutError(self.workflow_id, self.key, self.timeout_seconds or 0)
            wait = min(wait, remaining)
        return "wait", wait


def read_stream(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    *,
    offset: int = 0,
    timeout_seconds: float | None = None,
    polling_interval_sec: float | None = None,
    name: str = READ_NAME,
) -> Iterator[Any]:
    """``DBOS.read_stream``: yields every value in order until the stream is closed or
    its workflow has finished. While it waits it is woken by LISTEN/NOTIFY, and polls
    every ``polling_interval_sec`` (default 2 s) in case a notification is lost.

    Raises:
        DBOSNonExistentWorkflowError: no such workflow.
        DBOSStreamTimeoutError: no value arrived within ``timeout_seconds`` (per value).
    """
    reader = _new_reader(store, serializer, workflow_id, key, offset, timeout_seconds)
    reader.polling_interval = _polling_interval(polling_interval_sec)
    workflow = in_workflow_code()
    if workflow is not None:
        yield from _read_in_workflow(workflow, reader, name)
        return
    with store.notifications.subscribe(STREAMS_CHANNEL, f"{workflow_id}::{key}") as notified:
        while True:
            what, value = reader.next()
            if what == "end":
                return
            if what == "value":
                yield value
                continue
            notified.wait(value)
            notified.clear()


async def read_stream_async(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    *,
    offset: int = 0,
    timeout_seconds: float | None = None,
    polling_interval_sec: float | None = None,
) -> AsyncIterator[Any]:
    """``read_stream`` for async callers (outside workflow code)."""
    reader = _new_reader(store, serializer, workflow_id, key, offset, timeout_seconds)
    reader.polling_interval = _polling_interval(polling_interval_sec)
    with store.notifications.subscribe(STREAMS_CHANNEL, f"{workflow_id}::{key}") as notified:
        while True:
            what, value = await asyncio.to_thread(reader.next)
            if what == "end":
                return
            if what == "value":
                yield value
                continue
            await asyncio.to_thread(notified.wait, value)
            notified.clear()


def _new_reader(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    offset: int,
    timeout_seconds: float | None,
) -> _Reader:
    require_id("workflow_id", workflow_id)
    if not isinstance(key, str):
        raise DBOSException(f"A stream key must be a string, not {key!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise DBOSException(f"offset must be an integer >= 0, not {offset!r}")
    if timeout_seconds is not None and (
        not isinstance(timeout_seconds, int | float) or timeout_seconds < 0
    ):
        raise DBOSException(f"timeout_seconds must be a number >= 0, not {timeout_seconds!r}")
    return _Reader(store, serializer, workflow_id, key, offset, timeout_seconds)


def _polling_interval(polling_interval_sec: float | None) -> float:
    if polling_interval_sec is None:
        return FALLBACK_SECONDS
    if (
        not isinstance(polling_interval_sec, int | float)
        or isinstance(polling_interval_sec, bool)
        or polling_interval_sec < 0.001
    ):
        raise DBOSException(
            f"polling_interval_sec must be a number >= 0.001, not {polling_interval_sec!r}"
        )
    return float(polling_interval_sec)


def _read_in_workflow(workflow: WorkflowContext, reader: _Reader, name: str) -> Iterator[Any]:
    """Each value (and the end) is an operation of the reading workflow: a replay yields
    the recorded values without reading."""
    with reader.store.notifications.subscribe(
        STREAMS_CHANNEL, f"{reader.workflow_id}::{reader.key}"
    ) as notified:
        while True:
            function_id = workflow.next_function_id()
            recorded = workflow.checkpoints.get(function_id)
            if recorded is not None and recorded.completed:
                checkpoints.expect_name(workflow, function_id, name, recorded.function_name)
                value = checkpoints.replay(workflow, recorded)
                reader.offset += 1
            else:
                what, value = reader.next()
                while what == "wait":
                    notified.wait(value)
                    notified.clear()
                    what, value = reader.next()
                if what == "end":
                    value = STREAM_CLOSED
                record_outcome(workflow, function_id, name, output=value)
            if isinstance(value, str) and value == STREAM_CLOSED:
                return
            yield value
