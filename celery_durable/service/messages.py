"""Messages, events and streams read and written from outside workflow code (and
``send`` durably inside it), shared by ``DBOS`` and ``DBOSClient``: each operation and
its ``_async`` twin written once (the twin runs it in a thread, which copies the caller's
context)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from celery_durable.engine import bulk_send, events, mailbox, stream_offset, streams
from celery_durable.engine.context import in_thread_in_call_order, in_workflow_code
from celery_durable.integration.runtime import Runtime
from celery_durable.service.management import refuse_shard_key


@dataclass
class SendMessage:
    """One message of ``send_bulk`` (DBOS 3.4's): its destination, the message, its
    topic and idempotency key. ``shard_key`` must be None (no sharding here)."""

    destination_id: str
    message: Any
    topic: str | None = None
    idempotency_key: str | None = None
    shard_key: str | None = None


class MessageService:
    """``send``, ``send_bulk``, ``get_event``, ``get_all_events``, ``read_stream`` and
    ``read_stream_offset`` for one configuration (:attr:`WorkflowService.messages`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: object = None,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        refuse_shard_key(shard_key)
        if send_to_forks:
            self._send_bulk(
                [(destination_id, message, topic, idempotency_key)],
                serialization_type,
                True,
                mailbox.SEND_NAME,
            )
            return
        process = self.runtime.process
        mailbox.send(
            process.store,
            process.serializer,
            self.runtime.starter.publish,
            destination_id,
            message,
            topic,
            idempotency_key,
            serialization_type,
        )

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: object = None,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        await in_thread_in_call_order(
            1,
            lambda: self.send(
                destination_id,
                message,
                topic,
                idempotency_key,
                serialization_type=serialization_type,
                send_to_forks=send_to_forks,
                shard_key=shard_key,
            ),
        )

    def send_bulk(
        self,
        messages: Sequence[SendMessage],
        *,
        serialization_type: object = None,
        send_to_forks: bool = False,
    ) -> None:
        """Sends every message in one transaction (in workflow code, one operation).

        Raises:
            DBOSNonExistentWorkflowError: a destination does not exist (nothing sent).
        """
        for m in messages:
            refuse_shard_key(m.shard_key)
        self._send_bulk(
            [(m.destination_id, m.message, m.topic, m.idempotency_key) for m in messages],
            serialization_type,
            send_to_forks,
            bulk_send.SEND_BULK_NAME,
        )

    async def send_bulk_async(
        self,
        messages: Sequence[SendMessage],
        *,
        serialization_type: object = None,
        send_to_forks: bool = False,
    ) -> None:
        await in_thread_in_call_order(
            1,
            lambda: self.send_bulk(
                messages, serialization_type=serialization_type, send_to_forks=send_to_forks
            ),
        )

    def _send_bulk(
        self,
        messages: Sequence[bulk_send.Message],
        serialization_type: object,
        to_forks: bool,
        function_name: str,
    ) -> None:
        process = self.runtime.process
        bulk_send.send_bulk(
            process.store,
            process.serializer,
            self.runtime.starter.publish,
            messages,
            serialization_type=serialization_type,
            to_forks=to_forks,
            function_name=function_name,
        )

    def get_event(
        self, workflow_id: str, key: str, timeout_seconds: float = 60, shard_key: str | None = None
    ) -> Any:
        refuse_shard_key(shard_key)
        process = self.runtime.process
        return events.get_event(
            process.store, process.serializer, workflow_id, key, timeout_seconds
        )

    async def get_event_async(
        self, workflow_id: str, key: str, timeout_seconds: float = 60, shard_key: str | None = None
    ) -> Any:
        refuse_shard_key(shard_key)
        if in_workflow_code() is not None:  # a durable wait, in the workflow's thread
            return await in_thread_in_call_order(
                2, lambda: self.get_event(workflow_id, key, timeout_seconds)
            )
        process = self.runtime.process
        return await events.get_event_async(
            process.store, process.serializer, workflow_id, key, timeout_seconds
        )

    def get_all_events(self, workflow_id: str, shard_key: str | None = None) -> dict[str, Any]:
        refuse_shard_key(shard_key)
        process = self.runtime.process
        return events.get_all_events(process.store, process.serializer, workflow_id)

    async def get_all_events_async(
        self, workflow_id: str, shard_key: str | None = None
    ) -> dict[str, Any]:
        return await in_thread_in_call_order(1, lambda: self.get_all_events(workflow_id, shard_key))

    def read_stream(
        self,
        workflow_id: str,
        key: str,
        *,
        offset: int,
        timeout_seconds: float | None,
        polling_interval_sec: float | None = None,
        shard_key: str | None = None,
    ) -> Iterator[Any]:
        refuse_shard_key(shard_key)
        process = self.runtime.process
        return streams.read_stream(
            process.store,
            process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
        )

    def read_stream_async(
        self,
        workflow_id: str,
        key: str,
        *,
        offset: int,
        timeout_seconds: float | None,
        polling_interval_sec: float | None = None,
        shard_key: str | None = None,
    ) -> AsyncIterator[Any]:
        refuse_shard_key(shard_key)
        if in_workflow_code() is not None:
            # An async workflow's read is recorded value by value, as a sync one's.
            values = self.read_stream(
                workflow_id,
                key,
                offset=offset,
                timeout_seconds=timeout_seconds,
                polling_interval_sec=polling_interval_sec,
            )
            return _in_threads(values)
        process = self.runtime.process
        return streams.read_stream_async(
            process.store,
            process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
            polling_interval_sec=polling_interval_sec,
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
        refuse_shard_key(shard_key)
        process = self.runtime.process
        return stream_offset.read_stream_offset(
            process.store,
            process.serializer,
            workflow_id,
            key,
            offset,
            polling_interval_sec=polling_interval_sec,
            timeout_seconds=timeout_seconds,
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
        refuse_shard_key(shard_key)
        process = self.runtime.process
        at = (process.store, process.serializer, workflow_id, key, offset)
        every, limit = polling_interval_sec, timeout_seconds
        if in_workflow_code() is not None:  # recorded, in the workflow's thread
            return await in_thread_in_call_order(
                1,
                lambda: stream_offset.read_stream_offset(
                    *at, polling_interval_sec=every, timeout_seconds=limit
                ),
            )
        return await stream_offset.read_stream_offset_async(
            *at, polling_interval_sec=every, timeout_seconds=limit
        )


_END = object()


async def _in_threads(values: Iterator[Any]) -> AsyncIterator[Any]:
    """A blocking iterator as an async one: each step runs in a thread (with the
    caller's context, so an async workflow's reads are its operations)."""
    try:
        while (value := await asyncio.to_thread(next, values, _END)) is not _END:
            yield value
    finally:
        await asyncio.to_thread(getattr(values, "close", lambda: None))
