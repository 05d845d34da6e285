"""Queues: Celery queues whose limits hold across every worker, through PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

from celery_durable.context import enqueue_options
from celery_durable.error import DBOSException
from celery_durable.store import QueueLimits

MAX_PRIORITY = 2**31 - 1


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
        from celery_durable.dbos import DBOS

        DBOS._register_queue(self)

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
        from celery_durable.dbos import DBOS

        return DBOS._start(workflow, args, kwargs, queue=self.name)

    async def enqueue_async(
        self, workflow: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        from celery_durable.dbos import DBOS

        return await DBOS._start_async(workflow, args, kwargs, queue=self.name)


@contextlib.contextmanager
def SetEnqueueOptions(
    *, deduplication_id: str | None = None, priority: int | None = None
) -> Iterator[None]:
    """Enqueue options for workflows started in this block (as in DBOS).

    Args:
        deduplication_id: While a workflow of the queue with this id is ENQUEUED or
            PENDING, enqueuing another raises ``DBOSQueueDeduplicatedError``.
        priority: 0 to 2**31-1; lower runs first on queues with ``priority_enabled``.
    """
    if deduplication_id is not None and (
        not isinstance(deduplication_id, str) or not deduplication_id
    ):
        raise DBOSException(
            f"deduplication_id must be a non-empty string, not {deduplication_id!r}"
        )
    if priority is not None and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= MAX_PRIORITY
    ):
        raise DBOSException(
            f"priority must be an integer from 0 to {MAX_PRIORITY}, not {priority!r}"
        )
    token = enqueue_options.set({"deduplication_id": deduplication_id, "priority": priority})
    try:
        yield
    finally:
        enqueue_options.reset(token)


def _positive(label: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise DBOSException(f"{label} must be an integer >= 1, not {value!r}")
