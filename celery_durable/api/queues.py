"""Queues: Celery queues whose limits hold across every worker, through PostgreSQL.

Two generations, both supported. DBOS 2.x declares a queue in code, ``Queue(name,
...)`` (our specification: constructing ``Queue`` directly works, where DBOS 3.x
raises); DBOS 3.x declares one at run time with ``DBOS.register_queue`` (or
``DBOSClient.register_queue``) and looks it up with ``retrieve_queue``. A registered
queue is *database-backed*: its getters read the ``queues`` table and its setters
change it, for every worker at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.api.queue_limits import QueueRateLimit, queue_limits
from celery_durable.api.queue_settings import QueueSettings
from celery_durable.error import DBOSException
from celery_durable.service.queues import QueueService
from celery_durable.service.types import QueueLimits


class Queue(QueueSettings):
    """A queue of workflows: a Celery queue of the same name, with optional limits.

    Workers consume it with ``celery worker -Q name`` (a queue registered with
    ``DBOS.register_queue`` is also consumed by every worker of the default queue).
    Its limits are enforced when a worker claims an ENQUEUED workflow, under a lock on
    the queue in PostgreSQL, so they hold across any number of workers. Lower
    ``priority`` numbers (``SetEnqueueOptions(priority=...)``) are admitted first on
    every queue with a limit, as in DBOS 3.x.

    Args:
        name: The Celery queue's name.
        concurrency: Running workflows of this queue at most, globally (DBOS 3.x:
            ``global_concurrency``; give one of the two).
        limiter: ``{"limit": n, "period": seconds}``: starts per period at most.
        worker_concurrency: Running workflows of this queue per worker node at most.
            For a hard per-process bound, also give the queue its own workers
            (``celery worker -Q name -c N``): Celery's pool size is the real limit.
        global_concurrency: DBOS 3.x's name of ``concurrency``.
        partition_concurrency: ``concurrency`` per partition
            (``SetEnqueueOptions(queue_partition_key=...)``).
        partition_worker_concurrency: ``worker_concurrency`` per partition.
        partition_limiter: ``limiter`` per partition.
        polling_interval_sec: Recorded and reported, as in DBOS; Celery delivers the
            workflows, so nothing polls.
        database_backed_queue: True for a queue registered at run time (DBOS builds
            these; ``DBOS.register_queue`` is the way to get one).
        client_system_database: DBOS's internal; use ``DBOSClient.retrieve_queue``.
        application_name: The owning application (DBOS); recorded, not enforced.
        token: DBOS's construction token; not needed here.
        priority_enabled: DBOS 2.x's switch: priority is honoured on every queue now,
            so it is accepted and recorded only.
    """

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        *,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        polling_interval_sec: float = 1.0,
        database_backed_queue: bool = False,
        client_system_database: Any = None,
        application_name: str | None = None,
        token: object = None,
        priority_enabled: bool = False,
    ) -> None:
        if client_system_database is not None:
            raise DBOSException(
                "Queue(client_system_database=...) is DBOS's internal: use "
                "DBOSClient.retrieve_queue(name) for a queue bound to a client"
            )
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
            priority_enabled=priority_enabled,
        )
        self._bind(limits, database_backed_queue, application_name, _dbos_queues)
        if not database_backed_queue:
            ConfiguredFacade._register_queue(limits)

    @classmethod
    def _stored(
        cls, limits: QueueLimits, client_queues: Callable[[], QueueService] | None = None
    ) -> Queue:
        """A database-backed queue as stored, bound to the configured ``DBOS`` or, with
        ``client_queues``, to a client's operations (it cannot enqueue then)."""
        queue = cls.__new__(cls)
        queue._bind(limits, True, None, client_queues or _dbos_queues)
        return queue

    def _bind(
        self,
        limits: QueueLimits,
        database_backed: bool,
        application_name: str | None,
        queues: Callable[[], QueueService],
    ) -> None:
        self.name = limits.name
        self.database_backed_queue = database_backed
        self.application_name = application_name
        self._limits = limits
        self._queues = queues
        self._client_bound = queues is not _dbos_queues

    @property
    def limits(self) -> QueueLimits:
        """The limits as last read (a registered queue's setters and getters refresh them)."""
        return self._limits

    @property
    def priority_enabled(self) -> bool:
        """DBOS 2.x's switch, as declared (priority is honoured on every queue)."""
        return self._limits.priority_enabled

    def enqueue(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Starts ``func`` on this queue; returns its handle."""
        self._require_dbos_bound()
        return ConfiguredFacade._service().start(func, args, kwargs, queue=self.name)

    async def enqueue_async(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``enqueue`` for async callers."""
        self._require_dbos_bound()
        return await ConfiguredFacade._service().start_async(func, args, kwargs, queue=self.name)

    def _require_dbos_bound(self) -> None:
        if self._client_bound:
            raise DBOSException(
                f"Cannot enqueue on queue {self.name} from a client-bound Queue object. "
                "Use DBOSClient.enqueue instead."
            )

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, database_backed_queue={self.database_backed_queue})"


def _dbos_queues() -> QueueService:
    """The configured ``DBOS``'s queue operations."""
    return ConfiguredFacade._service().queues
