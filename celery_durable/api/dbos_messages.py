"""The ``DBOS`` facade's messages, events and streams (a part of ``DBOS``).

Names and signatures are DBOS Transact's. Each method delegates: what reads or writes
another workflow to the configured service (``DBOSClient`` delegates to the same
operations), what only workflow code does to :mod:`celery_durable.service.workflow_code`.
``shard_key`` is accepted as None only (no sharding here); ``serialization_type`` is
DBOS's ``WorkflowSerializationFormat`` (see docs/serialization.md).
"""

from __future__ import annotations

from typing import Any

from celery_durable.api.dbos_streams import WorkflowStreams
from celery_durable.core.serializers import WorkflowSerializationFormat
from celery_durable.service import workflow_code
from celery_durable.service.messages import SendMessage

_DEFAULT = WorkflowSerializationFormat.DEFAULT


class WorkflowMessaging(WorkflowStreams):
    """``send``/``recv``, ``set_event``/``get_event`` and (``WorkflowStreams``) streams
    on ``DBOS``."""

    # -- messages ---------------------------------------------------------------------

    @classmethod
    def send(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """Sends ``message`` to workflow ``destination_id`` on ``topic``.

        In workflow code it is a durable operation (a replay does not send again).
        Elsewhere, ``idempotency_key`` makes a repeated send (a retried webhook) deliver
        once. A workflow waiting in ``recv`` on the topic is published again at once;
        one that is ENQUEUED or has not reached its ``recv`` finds the message later.
        With ``send_to_forks``, every workflow recursively forked from the destination
        (existing now) gets the message too.

        Raises:
            DBOSNonExistentWorkflowError: no workflow has the id.
            DBOSSerializationError: the message is not serializable (nothing sent).
        """
        cls._service().messages.send(
            destination_id,
            message,
            topic,
            idempotency_key,
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
            shard_key=shard_key,
        )

    @classmethod
    async def send_async(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
        shard_key: str | None = None,
    ) -> None:
        """``send`` for async callers."""
        await cls._service().messages.send_async(
            destination_id,
            message,
            topic,
            idempotency_key,
            serialization_type=serialization_type,
            send_to_forks=send_to_forks,
            shard_key=shard_key,
        )

    @classmethod
    def send_bulk(
        cls,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Sends many messages in one transaction: all are sent, or (a destination does
        not exist: ``DBOSNonExistentWorkflowError``) none. In workflow code it is one
        durable operation. With ``send_to_forks``, each also goes to every workflow
        recursively forked from its destination."""
        cls._service().messages.send_bulk(
            messages, serialization_type=serialization_type, send_to_forks=send_to_forks
        )

    @classmethod
    async def send_bulk_async(
        cls,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = _DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send_bulk`` for async callers."""
        await cls._service().messages.send_bulk_async(
            messages, serialization_type=serialization_type, send_to_forks=send_to_forks
        )

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
    def set_event(
        key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = _DEFAULT
    ) -> None:
        """Publishes ``value`` under ``key`` for this workflow (the last write wins); in
        workflow code or a step. Workflows waiting in ``get_event`` run at once."""
        workflow_code.set_event(key, value, serialization_type)

    @staticmethod
    async def set_event_async(
        key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = _DEFAULT
    ) -> None:
        """``set_event`` for ``async def`` workflows."""
        await workflow_code.set_event_async(key, value, serialization_type)

    @classmethod
    def get_event(
        cls,
        workflow_id: str,
        key: str,
        timeout_seconds: float = 60,
        *,
        shard_key: str | None = None,
    ) -> Any:
        """The latest value of workflow ``workflow_id``'s event ``key``, waiting for it up
        to ``timeout_seconds`` (then None). In workflow code it is durable and frees the
        worker while it waits."""
        return cls._service().messages.get_event(workflow_id, key, timeout_seconds, shard_key)

    @classmethod
    async def get_event_async(
        cls,
        workflow_id: str,
        key: str,
        timeout_seconds: float = 60,
        *,
        shard_key: str | None = None,
    ) -> Any:
        """``get_event`` for async callers."""
        return await cls._service().messages.get_event_async(
            workflow_id, key, timeout_seconds, shard_key
        )

    @classmethod
    def get_all_events(cls, workflow_id: str, *, shard_key: str | None = None) -> dict[str, Any]:
        """Every event of a workflow, ``{key: latest value}``."""
        return cls._service().messages.get_all_events(workflow_id, shard_key)

    @classmethod
    async def get_all_events_async(
        cls, workflow_id: str, *, shard_key: str | None = None
    ) -> dict[str, Any]:
        """``get_all_events`` for async callers."""
        return await cls._service().messages.get_all_events_async(workflow_id, shard_key)
