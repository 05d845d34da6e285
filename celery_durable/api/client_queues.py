"""``DBOSClient``'s queues, as DBOS 3.4's client has them (a part of ``DBOSClient``).

A queue the client registers or retrieves is bound to the client: its getters and
setters go through the client's connections; it does not enqueue (``enqueue`` does).
"""

from __future__ import annotations

from celery_durable.api.queue_limits import QueueRateLimit, queue_limits
from celery_durable.api.queues import Queue
from celery_durable.error import DBOSException
from celery_durable.service import WorkflowService
from celery_durable.service.queues import QueueService
from celery_durable.service.types import OnConflict


class ClientQueues:
    """``register_queue``, ``retrieve_queue``, ``list_queues``, ``delete_queue`` and
    their async twins on ``DBOSClient``."""

    _service: WorkflowService

    def register_queue(
        self,
        name: str,
        *,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        limiter: QueueRateLimit | None = None,
        worker_concurrency: int | None = None,
        polling_interval_sec: float = 1.0,
        on_conflict: OnConflict = "always_update",
        application_name: str | None = None,
        concurrency: int | None = None,
    ) -> Queue:
        """As ``DBOS.register_queue`` (``on_conflict`` defaults to ``"always_update"``,
        as in DBOS's client; a client has no application version, so
        ``"update_if_latest_version"`` raises); the queue returned is bound to this
        client (its setters work; to enqueue, use ``enqueue``)."""
        _no_application_name(application_name)
        limits = queue_limits(
            name,
            concurrency=concurrency,
            global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency,
            limiter=limiter,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
            polling_interval_sec=polling_interval_sec,
        )
        stored, _ = self._service.queues.register(limits, on_conflict, versioned=False)
        return Queue._stored(stored, self._queue_operations)

    async def register_queue_async(
        self,
        name: str,
        *,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        limiter: QueueRateLimit | None = None,
        worker_concurrency: int | None = None,
        polling_interval_sec: float = 1.0,
        on_conflict: OnConflict = "always_update",
        application_name: str | None = None,
        concurrency: int | None = None,
    ) -> Queue:
        """``register_queue`` for async callers."""
        _no_application_name(application_name)
        limits = queue_limits(
            name,
            concurrency=concurrency,
            global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency,
            limiter=limiter,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
            polling_interval_sec=polling_interval_sec,
        )
        stored, _ = await self._service.queues.register_async(limits, on_conflict, versioned=False)
        return Queue._stored(stored, self._queue_operations)

    def retrieve_queue(self, name: str) -> Queue | None:
        """As ``DBOS.retrieve_queue`` (the queue is bound to this client)."""
        stored = self._service.queues.retrieve(name)
        return None if stored is None else Queue._stored(stored, self._queue_operations)

    async def retrieve_queue_async(self, name: str) -> Queue | None:
        """``retrieve_queue`` for async callers."""
        stored = await self._service.queues.retrieve_async(name)
        return None if stored is None else Queue._stored(stored, self._queue_operations)

    def delete_queue(self, name: str) -> None:
        """As ``DBOS.delete_queue``."""
        self._service.queues.delete(name)

    async def delete_queue_async(self, name: str) -> None:
        """``delete_queue`` for async callers."""
        await self._service.queues.delete_async(name)

    def list_queues(self, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """As ``DBOS.list_queues``."""
        _no_application_name(application_name)
        return [Queue._stored(q, self._queue_operations) for q in self._service.queues.list_all()]

    async def list_queues_async(
        self, *, application_name: str | list[str] | None = None
    ) -> list[Queue]:
        """``list_queues`` for async callers."""
        _no_application_name(application_name)
        stored = await self._service.queues.list_all_async()
        return [Queue._stored(q, self._queue_operations) for q in stored]

    def _queue_operations(self) -> QueueService:
        return self._service.queues


def _no_application_name(application_name: str | list[str] | None) -> None:
    if application_name is not None:
        raise DBOSException(
            "application_name is not supported: queues have no owning application here "
            "(one system database serves one Celery app's fleet); omit it"
        )
