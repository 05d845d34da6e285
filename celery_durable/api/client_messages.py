"""``DBOSClient``'s messages, events and streams (as DBOS 3.4's ``DBOSClient``): each
delegates to the service's :class:`~celery_durable.service.messages.MessageService`,
the same operations ``DBOS`` uses. ``shard_key`` is accepted as None only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery_durable.core.serializers import WorkflowSerializationFormat
from celery_durable.service import WorkflowService
from celery_durable.service.messages import SendMessage

_DEFAULT = WorkflowSerializationFormat.DEFAULT


class ClientMessaging:
    """``send``, ``send_bulk``, ``get_event``, ``get_all_events``, ``read_stream`` and
    ``read_stream_offset`` on ``DBOSClient``."""

    _service: WorkflowService

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """As ``DBOS.send`` (outside a workflow): ``idempotency_key`` makes a repeated
        send deliver once (positional here, keyword-only on ``DBOS``, as in DBOS)."""
        self._service.messages.send(
            destination_id,
            message,
            topic,
            idempotency_key,
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
            shard_key=shard_key,
        )

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``send`` for async callers."""
        await self._service.messages.send_async(
            destination_id,
            message,
            topic,
            idempotency_key,
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
            shard_key=shard_key,
        )

    def send_bulk(
        self,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """As ``DBOS.send_bulk``: every message in one transaction, or none."""
        self._service.messages.send_bulk(
            messages, serialization_type=serialization_type, send_to_forks=send_to_forks
        )

    async def send_bulk_async(
        self,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send_bulk`` for async callers."""
        await self._service.messages.send_bulk_async(
            messages, serialization_type=serialization_type, send_to_forks=send_to_forks
        )

    def get_event(
        self,
        workflow_id: str,
        key: str,
        timeout_seconds: float = 60,
        *,
        shard_key: str | None = None,
    ) -> Any:
        """As ``DBOS.get_event``: waits up to ``timeout_seconds`` (then None)."""
        return self._service.messages.get_event(workflow_id, key, timeout_seconds, shard_key)

    async def get_event_async(
        self,
        workflow_id: str,
        key: str,
        timeout_seconds: float = 60,
        *,
        shard_key: str | None = None,
    ) -> Any:
        """``get_event`` for async callers."""
        return await self._service.messages.get_event_async(
            workflow_id, key, timeout_seconds, shard_key
        )

    def get_all_events(self, workflow_id: str, *, shard_key: str | None = None) -> dict[str, Any]:
        """As ``DBOS.get_all_events``."""
        return self._service.messages.get_all_events(workflow_id, shard_key)

    async def get_all_events_async(
        self, workflow_id: str, *, shard_key: str | None = None
    ) -> dict[str, Any]:
        """``get_all_events`` for async callers."""
        return await self._service.messages.get_all_events_async(workflow_id, shard_key)

    def read_stream(
        self,
        workflow_id: str,
        key: str,
        *,
        offset: int = 0,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Iterator[Any]:
        """As ``DBOS.read_stream``."""
        return self._service.messages.read_stream(
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
            shard_key=shard_key,
        )

    def read_stream_async(
        self,
        workflow_id: str,
        key: str,
        *,
        offset: int = 0,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> AsyncIterator[Any]:
        """``read_stream`` for async callers (an async iterator)."""
        return self._service.messages.read_stream_async(
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
            shard_key=shard_key,
        )

    def read_stream_offset(
        self,
        workflow_id: str,
        key: str,
        offset: int,
        *,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Any:
        """As ``DBOS.read_stream_offset``."""
        return self._service.messages.read_stream_offset(
            workflow_id,
            key,
            offset,
            polling_interval_sec=polling_interval_sec,
            timeout_seconds=timeout_seconds,
            shard_key=shard_key,
        )

    async def read_stream_offset_async(
        self,
        workflow_id: str,
        key: str,
        offset: int,
        *,
        polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> Any:
        """``read_stream_offset`` for async callers."""
        return await self._service.messages.read_stream_offset_async(
            workflow_id,
            key,
            offset,
            polling_interval_sec=polling_interval_sec,
            timeout_seconds=timeout_seconds,
            shard_key=shard_key,
        )
