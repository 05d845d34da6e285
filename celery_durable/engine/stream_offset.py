"""DBOS 3.4's ``read_stream_offset``: the one value at an offset of a stream, waiting
for it (in workflow code a recorded operation, ``DBOS.readStreamOffset``)."""

from __future__ import annotations

from typing import Any

from celery_durable.core.serialization import Serializer
from celery_durable.engine import streams
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSStreamTimeoutError


def read_stream_offset(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    offset: int,
    *,
    polling_interval_sec: float | None = None,
    timeout_seconds: float | None = None,
) -> Any:
    """The value at ``offset`` of workflow ``workflow_id``'s stream ``key``.

    Raises:
        DBOSStreamTimeoutError: ``timeout_seconds`` passed, or the stream ended (closed,
            or its workflow finished) before reaching ``offset``.
        DBOSNonExistentWorkflowError: no such workflow.
    """
    values = streams.read_stream(
        store,
        serializer,
        workflow_id,
        key,
        offset=offset,
        timeout_seconds=timeout_seconds,
        polling_interval_sec=polling_interval_sec,
        name=streams.READ_OFFSET_NAME,
    )
    try:
        for value in values:
            return value
    finally:
        values.close()  # type: ignore[attr-defined]
    error = DBOSStreamTimeoutError(workflow_id, key, timeout_seconds or 0)
    error.message = (
        f"Stream {key} of workflow {workflow_id} ended before a value at offset {offset}"
    )
    raise error


async def read_stream_offset_async(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    offset: int,
    *,
    polling_interval_sec: float | None = None,
    timeout_seconds: float | None = None,
) -> Any:
    """``read_stream_offset`` for async callers (outside workflow code)."""
    values = streams.read_stream_async(
        store,
        serializer,
        workflow_id,
        key,
        offset=offset,
        timeout_seconds=timeout_seconds,
        polling_interval_sec=polling_interval_sec,
    )
    try:
        async for value in values:
            return value
    finally:
        await values.aclose()  # type: ignore[attr-defined]
    error = DBOSStreamTimeoutError(workflow_id, key, timeout_seconds or 0)
    error.message = (
        f"Stream {key} of workflow {workflow_id} ended before a value at offset {offset}"
    )
    raise error
