"""A queue's limits, checked as DBOS 3.x checks them, and their columns."""

from __future__ import annotations

from typing import TypedDict

from celery_durable.error import DBOSException
from celery_durable.service.types import QueueLimits

# DBOS's own queues are named under this prefix; user queues may not be.
RESERVED_QUEUE_NAME_PREFIX = "_dbos_"


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflows start per ``period`` seconds."""

    limit: int
    period: float


def queue_limits(
    name: str,
    *,
    concurrency: int | None = None,
    global_concurrency: int | None = None,
    worker_concurrency: int | None = None,
    limiter: QueueRateLimit | None = None,
    partition_concurrency: int | None = None,
    partition_worker_concurrency: int | None = None,
    partition_limiter: QueueRateLimit | None = None,
    polling_interval_sec: float = 1.0,
    priority_enabled: bool = False,
) -> QueueLimits:
    """A queue's checked limits (DBOS's ``ValueError`` messages for its own checks).

    Raises:
        DBOSException: a name that is not a non-empty string, a concurrency that is
            not an integer >= 0 (0 pauses, as in DBOS), a limiter's limit that is not an
            integer >= 1, a limiter period that is not > 0.
        ValueError: what DBOS 3.x rejects (a reserved name, limits that contradict).
    """
    if not isinstance(name, str) or not name:
        raise DBOSException(f"A queue name must be a non-empty string, not {name!r}")
    if name.startswith(RESERVED_QUEUE_NAME_PREFIX):
        raise ValueError(
            f"Queue name {name} is reserved: names starting with "
            f"'{RESERVED_QUEUE_NAME_PREFIX}' belong to DBOS's internal queues."
        )
    if concurrency is not None and global_concurrency is not None:
        raise ValueError(
            "concurrency is deprecated in favor of global_concurrency; set only one of them"
        )
    overall = concurrency if global_concurrency is None else global_concurrency
    not_negative("concurrency", overall)
    not_negative("worker_concurrency", worker_concurrency)
    at_least_one("partition_concurrency", partition_concurrency)
    at_least_one("partition_worker_concurrency", partition_worker_concurrency)
    check_bounds(overall, worker_concurrency, partition_concurrency, partition_worker_concurrency)
    if not isinstance(polling_interval_sec, int | float) or polling_interval_sec <= 0:
        raise ValueError("polling_interval_sec must be positive")
    limit, period_ms = limiter_columns("limiter", limiter)
    partition_limit, partition_period_ms = limiter_columns("partition_limiter", partition_limiter)
    return QueueLimits(
        name=name,
        concurrency=overall,
        worker_concurrency=worker_concurrency,
        limiter_limit=limit,
        limiter_period_ms=period_ms,
        priority_enabled=priority_enabled,
        partition_concurrency=partition_concurrency,
        partition_worker_concurrency=partition_worker_concurrency,
        partition_limiter_limit=partition_limit,
        partition_limiter_period_ms=partition_period_ms,
        polling_interval_sec=float(polling_interval_sec),
    )


def check_bounds(
    overall: int | None,
    worker: int | None,
    partition: int | None,
    partition_worker: int | None,
) -> None:
    """Each narrower limit is at most the wider ones (DBOS's checks and messages)."""
    pairs = (
        (partition_worker, partition, "partition_concurrency", "partition_worker_concurrency"),
        (partition_worker, worker, "worker_concurrency", "partition_worker_concurrency"),
        (worker, overall, "concurrency", "worker_concurrency"),
        (partition, overall, "global_concurrency", "partition_concurrency"),
        (partition_worker, overall, "concurrency", "partition_worker_concurrency"),
    )
    for narrow, wide, wide_name, narrow_name in pairs:
        if narrow is not None and wide is not None and narrow > wide:
            raise ValueError(f"{wide_name} must be greater than or equal to {narrow_name}")


def limiter_columns(label: str, limiter: QueueRateLimit | None) -> tuple[int | None, int | None]:
    """A rate limit's columns: its limit and its period in milliseconds."""
    if limiter is None:
        return None, None
    limit, period = limiter.get("limit"), limiter.get("period")
    if limit is None or period is None:
        raise ValueError(f"{label} must specify both 'limit' and 'period'")
    positive(f"{label} limit", limit)
    if not isinstance(period, int | float) or isinstance(period, bool) or period <= 0:
        raise DBOSException(f"{label} period must be seconds > 0, not {period!r}")
    return limit, round(period * 1000)


def at_least_one(label: str, value: object) -> None:
    """A per-partition limit is an integer >= 1 (DBOS's ``ValueError`` for one below)."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise ValueError(f"{label} must be at least 1")
    positive(label, value)


def not_negative(label: str, value: object) -> None:
    """A queue-wide or per-worker concurrency: an integer >= 0, as DBOS accepts it (0
    pauses the queue, or this worker's dequeuing: DBOS's pause idiom)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise DBOSException(f"{label} must be an integer >= 0, not {value!r}")


def positive(label: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise DBOSException(f"{label} must be an integer >= 1, not {value!r}")
