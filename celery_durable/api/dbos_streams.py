"""The ``DBOS`` facade's streams (a part of ``DBOS``, through ``WorkflowMessaging``).

Names and signatures are DBOS Transact 3.4's; ``shard_key`` is accepted as None only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.core.serializers import WorkflowSerializationFormat
from celery_durable.service import workflow_code

_DEFAULT = WorkflowSerializationFormat.DEFAULT


class WorkflowStreams(ConfiguredFacade):
    """``write_stream``, ``close_stream``, ``read_stream`` and ``read_stream_offset``."""

    @staticmethod
    def write_stream(
        key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = _DEFAULT
    ) -> None:
        """Appends ``value`` to this workflow's stream ``key`` (workflow code or step)."""
        workflow_code.write_stream(key, value, serialization_type)

    @staticmethod
    async def write_stream_async(
        key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = _DEFAULT
    ) -> None:
        """``write_stream`` for ``async def`` workflows."""
        await workflow_code.write_stream_async(key, value, serialization_type)

    @staticmethod
    def close_stream(key: str) -> None:
        """Closes this workflow's stream ``key``: readers end after its values."""
        workflow_code.close_stream(key)

    @staticmethod
    async def close_stream_async(key: str) -> None:
        """``close_stream`` for ``async def`` workflows."""
        await workflow_code.close_stream_async(key)

    @classmethod
    def read_stream(
        cls,
        workflow_id: str,
        key: str,
        *,
        offset: int = 0,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Iterator[Any]:
        """Every value of workflow ``workflow_id``'s stream ``key`` in order; ends when the
        stream is closed or the workflow has finished. It is woken by LISTEN/NOTIFY and
        polls every ``polling_interval_sec`` (>= 0.001; default 2) besides."""
        return cls._service().messages.read_stream(
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
            shard_key=shard_key,
        )

    @classmethod
    def read_stream_async(
        cls,
        workflow_id: str,
        key: str,
        *,
        offset: int = 0,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> AsyncIterator[Any]:
        """``read_stream`` for async callers (an async iterator)."""
        return cls._service().messages.read_stream_async(
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
            shard_key=shard_key,
        )

    @classmethod
    def read_stream_offset(
        cls,
        workflow_id: str,
        key: str,
        offset: int,
        *,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Any:
        """The one value at ``offset`` of the stream, waiting for it (without a timeout,
        indefinitely).

        Raises:
            DBOSStreamTimeoutError: the timeout passed, or the stream ended first.
        """
        return cls._service().messages.read_stream_offset(
            workflow_id,
            key,
            offset,
            polling_interval_sec=polling_interval_sec,
            timeout_seconds=timeout_seconds,
            shard_key=shard_key,
        )

    @classmethod
    async def read_stream_offset_async(
        cls,
        workflow_id: str,
        key: str,
        offset: int,
        *,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Any:
        """``read_stream_offset`` for async callers."""
        return await cls._service().messages.read_stream_offset_async(
            workflow_id,
            key,
            offset,
            polling_interval_sec=polling_interval_sec,
            timeout_seconds=timeout_seconds,
            shard_key=shard_key,
        )
