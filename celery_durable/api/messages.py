"""The ``DBOS`` facade's messages, events and streams (mixed into ``DBOS``).

Names and signatures are DBOS Transact's. The ``_async`` twins run the same code in a
thread (the workflow context travels with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery_durable.engine import events, messaging, streams
from celery_durable.integration.runtime import Runtime


class WorkflowMessaging:
    """``send``/``recv``, ``set_event``/``get_event`` and streams on ``DBOS``."""

    @classmethod
    def _runtime(cls) -> Runtime:
        raise NotImplementedError  # DBOS provides it

    # -- messages ---------------------------------------------------------------------

    @classmethod
    def send(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Sends ``message`` to workflow ``destination_id`` on ``topic``.

        In workflow code it is a durable operation (a replay does not send again).
        Elsewhere, ``idempotency_key`` makes a repeated send (a retried webhook) deliver
        once. A workflow waiting in ``recv`` on the topic is published again at once;
        one that is ENQUEUED or has not reached its ``recv`` finds the message later.

        Raises:
            DBOSNonExistentWorkflowError: no workflow has the id.
            DBOSSerializationError: the message is not JSON-serializable (nothing sent).
        """
        runtime = cls._runtime()
        messaging.send(
            runtime.process.store,
            runtime.process.serializer,
            runtime.starter.publish,
            destination_id,
            message,
            topic,
            idempotency_key,
        )

    @classmethod
    async def send_async(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        await asyncio.to_thread(
            cls.send, destination_id, message, topic, idempotency_key=idempotency_key
        )

    @staticmethod
    def recv(topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """The oldest unconsumed message sent to this workflow on ``topic`` (each is
        received once, in the order sent), or None after ``timeout_seconds``.

        Only in workflow code. Under Celery the worker is free while it waits: the
        workflow is re-queued until the timeout, and a ``send`` publishes it at once.
        """
        return messaging.recv(topic, timeout_seconds)

    @staticmethod
    async def recv_async(topic: str | None = None, timeout_seconds: float = 60) -> Any:
        return await asyncio.to_thread(messaging.recv, topic, timeout_seconds)

    # -- events -----------------------------------------------------------------------

    @staticmethod
    def set_event(key: str, value: Any) -> None:
        """Publishes ``value`` under ``key`` for this workflow (the last write wins); in
        workflow code or a step. Workflows waiting in ``get_event`` run at once."""
        events.set_event(key, value)

    @staticmethod
    async def set_event_async(key: str, value: Any) -> None:
        await asyncio.to_thread(events.set_event, key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of workflow ``workflow_id``'s event ``key``, waiting for it up
        to ``timeout_seconds`` (then None). In workflow code it is durable and frees the
        worker while it waits."""
        runtime = cls._runtime()
        return events.get_event(
            runtime.process.store, runtime.process.serializer, workflow_id, key, timeout_seconds
        )

    @classmethod
    async def get_event_async(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        return await asyncio.to_thread(cls.get_event, workflow_id, key, timeout_seconds)

    @classmethod
    def get_all_events(cls, workflow_id: str) -> dict[str, Any]:
        """Every event of a workflow, ``{key: latest value}``."""
        runtime = cls._runtime()
        return events.get_all_events(runtime.process.store, runtime.process.serializer, workflow_id)

    @classmethod
    async def get_all_events_async(cls, workflow_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(cls.get_all_events, workflow_id)

    # -- streams ----------------------------------------------------------------------

    @staticmethod
    def write_stream(key: str, value: Any) -> None:
        """Appends ``value`` to this workflow's stream ``key`` (workflow code or step)."""
        streams.write_stream(key, value)

    @staticmethod
    async def write_stream_async(key: str, value: Any) -> None:
        await asyncio.to_thread(streams.write_stream, key, value)

    @staticmethod
    def close_stream(key: str) -> None:
        """Closes this workflow's stream ``key``: readers end after its values."""
        streams.close_stream(key)

    @staticmethod
    async def close_stream_async(key: str) -> None:
        await asyncio.to_thread(streams.close_stream, key)

    @classmethod
    def read_stream(
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """Every value of workflow ``workflow_id``'s stream ``key`` in order; ends when the
        stream is closed or the workflow has finished."""
        runtime = cls._runtime()
        return streams.read_stream(
            runtime.process.store,
            runtime.process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )

    @classmethod
    def read_stream_async(
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        runtime = cls._runtime()
        return streams.read_stream_async(
            runtime.process.store,
            runtime.process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )
