"""Messages, events and streams read and written from outside workflow code (and
``send`` durably inside it), shared by ``DBOS`` and ``DBOSClient``: each operation and
its ``_async`` twin written once (the twin runs it in a thread, which copies the caller's
context)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery_durable.engine import events, mailbox, streams
from celery_durable.integration.runtime import Runtime


class MessageService:
    """``send``, ``get_event``, ``get_all_events`` and ``read_stream`` for one
    configuration (:attr:`WorkflowService.messages`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        process = self.runtime.process
        mailbox.send(
            process.store,
            process.serializer,
            self.runtime.starter.publish,
            destination_id,
            message,
            topic,
            idempotency_key,
        )

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        await asyncio.to_thread(self.send, destination_id, message, topic, idempotency_key)

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        process = self.runtime.process
        return events.get_event(
            process.store, process.serializer, workflow_id, key, timeout_seconds
        )

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        return await asyncio.to_thread(self.get_event, workflow_id, key, timeout_seconds)

    def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        process = self.runtime.process
        return events.get_all_events(process.store, process.serializer, workflow_id)

    async def get_all_events_async(self, workflow_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.get_all_events, workflow_id)

    def read_stream(
        self, workflow_id: str, key: str, *, offset: int, timeout_seconds: float | None
    ) -> Iterator[Any]:
        process = self.runtime.process
        return streams.read_stream(
            process.store,
            process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )

    def read_stream_async(
        self, workflow_id: str, key: str, *, offset: int, timeout_seconds: float | None
    ) -> AsyncIterator[Any]:
        process = self.runtime.process
        return streams.read_stream_async(
            process.store,
            process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )
