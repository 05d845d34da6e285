"""The ``DBOS`` facade's messages, events and streams (a part of ``DBOS``).

Names and signatures are DBOS Transact's. Each method delegates: what reads or writes
another workflow to the configured service (``DBOSClient`` delegates to the same
operations), what only workflow code does to :mod:`celery_durable.service.workflow_code`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.service import workflow_code


class WorkflowMessaging(ConfiguredFacade):
    """``send``/``recv``, ``set_event``/``get_event`` and streams on ``DBOS``."""

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
        cls._service().messages.send(destination_id, message, topic, idempotency_key)

    @classmethod
    async def send_async(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """``send`` for async callers."""
        await cls._service().messages.send_async(destination_id, message, topic, idempotency_key)

    @staticmethod
    def recv(topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """The oldest unconsumed message sent to this workflow on ``topic`` (each is
        received once, in the order sent), or None after ``timeout_seconds``.

        Only in workflow code. Under Celery the worker is free while it waits: the
        workflow is re-queued until the timeout, and a ``send`` publishes it at once.
        """
        return workflow_code.recv(topic, timeout_seconds)

    @staticmethod
    async def recv_async(topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """``recv`` for ``async def`` workflows."""
        return await workflow_code.recv_async(topic, timeout_seconds)

    # -- events -----------------------------------------------------------------------

    @staticmethod
    def set_event(key: str, value: Any) -> None:
        """Publishes ``value`` under ``key`` for this workflow (the last write wins); in
        workflow code or a step. Workflows waiting in ``get_event`` run at once."""
        workflow_code.set_event(key, value)

    @staticmethod
    async def set_event_async(key: str, value: Any) -> None:
        """``set_event`` for ``async def`` workflows."""
        await workflow_code.set_event_async(key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of workflow ``workflow_id``'s event ``key``, waiting for it up
        to ``timeout_seconds`` (then None). In workflow code it is durable and frees the
        worker while it waits."""
        return cls._service().messages.get_event(workflow_id, key, timeout_seconds)

    @classmethod
    async def get_event_async(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """``get_event`` for async callers."""
        return await cls._service().messages.get_event_async(workflow_id, key, timeout_seconds)

    @classmethod
    def get_all_events(cls, workflow_id: str) -> dict[str, Any]:
        """Every event of a workflow, ``{key: latest value}``."""
        return cls._service().messages.get_all_events(workflow_id)

    @classmethod
    async def get_all_events_async(cls, workflow_id: str) -> dict[str, Any]:
        """``get_all_events`` for async callers."""
        return await cls._service().messages.get_all_events_async(workflow_id)

    # -- streams ----------------------------------------------------------------------

    @staticmethod
    def write_stream(key: str, value: Any) -> None:
        """Appends ``value`` to this workflow's stream ``key`` (workflow code or step)."""
        workflow_code.write_stream(key, value)

    @staticmethod
    async def write_stream_async(key: str, value: Any) -> None:
        """``write_stream`` for ``async def`` workflows."""
        await workflow_code.write_stream_async(key, value)

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
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """Every value of workflow ``workflow_id``'s stream ``key`` in order; ends when the
        stream is closed or the workflow has finished."""
        return cls._service().messages.read_stream(
            workflow_id, key, offset=offset, timeout_seconds=timeout_seconds
        )

    @classmethod
    def read_stream_async(
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        """``read_stream`` for async callers (an async iterator)."""
        return cls._service().messages.read_stream_async(
            workflow_id, key, offset=offset, timeout_seconds=timeout_seconds
        )
