"""Queues: Celery queues whose limits hold across every worker, through PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from celery_durable.api.dbos import DBOS
from celery_durable.error import DBOSException
from celery_durable.service.types import QueueLimits


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflows start per ``period`` seconds."""

    limit: int
    period: float


class Queue:
    """A queue of workflows: a Celery queue of the same name, with optional limits.

    Workers consume it with ``celery worker -Q name``. ``concurrency`` (workflows of
    the queue running at once, across all workers), ``worker_concurrency`` (per worker
    node) and ``limiter`` are enforced when a worker claims an ENQUEUED workflow, under
    a lock on the queue in PostgreSQL, so they hold across any number of workers. With
    ``priority_enabled``, a queue with a concurrency limit admits lower priority
    numbers first (``SetEnqueueOptions(priority=...)``).

    Args:
        name: The Celery queue's name.
        concurrency: Running workflows of this queue at most, globally.
        limiter: ``{"limit": n, "period": seconds}``: starts per period at most.
        worker_concurrency: Running workflows of this queue per worker node at most.
            For a hard per-process bound, also give the queue its own workers
            (``celery worker -Q name -c N``): Celery's pool size is the real limit.
        priority_enabled: Honour ``priority`` (lower runs first, as in DBOS).
    """

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise DBOSException(f"A queue name must be a non-empty string, not {name!r}")
        _positive("concurrency", concurrency)
        _positive("worker_concurrency", worker_concurrency)
        if limiter is not None:
            limit, period = limiter.get("limit"), limiter.get("period")
            _positive("limiter limit", limit)
            if not isinstance(period, int | float) or period <= 0:
                raise DBOSException(f"limiter period must be seconds > 0, not {period!r}")
        self.name = name
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.limiter = limiter
        self.priority_enabled = priority_enabled
        DBOS._register_queue(self.limits)

    @property
    def limits(self) -> QueueLimits:
        return QueueLimits(
            name=self.name,
            concurrency=self.concurrency,
            worker_concurrency=self.worker_concurrency,
            limiter_limit=self.limiter["limit"] if self.limiter else None,
            limiter_period_ms=round(self.limiter["period"] * 1000) if self.limiter else None,
            priority_enabled=self.priority_enabled,
        )

    def enqueue(self, workflow: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Starts ``workflow`` on this queue; returns its handle."""
        return DBOS._service().start(workflow, args, kwargs, queue=self.name)

    async def enqueue_async(
        self, workflow: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        """``enqueue`` for async callers."""
        return await DBOS._service().start_async(workflow, args, kwargs, queue=self.name)


def _positive(label: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise DBOSException(f"{label} must be an integer >= 1, not {value!r}")
