"""A queue's limits as DBOS 3.x reads and changes them: a getter property, an async
getter, a setter and an async setter per limit (a part of ``Queue``).

A database-backed queue (registered at run time) reads its row on every get and
writes it on every set, so a change reaches every worker at its next admission. A
queue declared in code (``Queue(...)``) answers from its declaration, and refuses
setters as DBOS does: its code is its configuration.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from celery_durable.api.queue_limits import (
    QueueRateLimit,
    at_least_one,
    check_bounds,
    limiter_columns,
    not_negative,
)
from celery_durable.error import DBOSException
from celery_durable.service.queues import QueueService
from celery_durable.service.types import QueueLimits


class QueueSettings:
    """The getters and setters of ``Queue`` (DBOS 3.4's names)."""

    name: str
    database_backed_queue: bool
    _limits: QueueLimits
    _queues: Callable[[], QueueService]

    # -- reading and writing the row ----------------------------------------------------

    def _current(self) -> QueueLimits:
        if self.database_backed_queue:
            self._limits = self._queues().required(self.name)
        return self._limits

    async def _current_async(self) -> QueueLimits:
        return await asyncio.to_thread(self._current)

    def _write(self, check: Callable[[QueueLimits], None], **values: Any) -> None:
        """Checks the change against the latest row, then writes it."""
        if not self.database_backed_queue:
            raise DBOSException(
                f"Cannot configure queue {self.name}: dynamic configuration is only "
                "supported for queues registered via DBOS.register_queue."
            )
        latest = self._current()
        check(dataclasses.replace(latest, **values))
        self._limits = self._queues().update(self.name, values)

    # -- concurrency (DBOS 3.x: global_concurrency) -------------------------------------

    @property
    def concurrency(self) -> int | None:
        """Deprecated in DBOS 3.x: ``global_concurrency``."""
        return self._current().concurrency

    async def get_concurrency_async(self) -> int | None:
        return (await self._current_async()).concurrency

    def set_concurrency(self, value: int | None) -> None:
        self._write(_bounded, concurrency=value)

    async def set_concurrency_async(self, value: int | None) -> None:
        await asyncio.to_thread(self.set_concurrency, value)

    @property
    def global_concurrency(self) -> int | None:
        return self._current().concurrency

    async def get_global_concurrency_async(self) -> int | None:
        return (await self._current_async()).concurrency

    def set_global_concurrency(self, value: int | None) -> None:
        self._write(_bounded, concurrency=value)

    async def set_global_concurrency_async(self, value: int | None) -> None:
        await asyncio.to_thread(self.set_global_concurrency, value)

    # -- worker_concurrency ---------------------------------------------------------------

    @property
    def worker_concurrency(self) -> int | None:
        return self._current().worker_concurrency

    async def get_worker_concurrency_async(self) -> int | None:
        return (await self._current_async()).worker_concurrency

    def set_worker_concurrency(self, value: int | None) -> None:
        self._write(_bounded, worker_concurrency=value)

    async def set_worker_concurrency_async(self, value: int | None) -> None:
        await asyncio.to_thread(self.set_worker_concurrency, value)

    # -- partitions -----------------------------------------------------------------------

    @property
    def partition_concurrency(self) -> int | None:
        return self._current().partition_concurrency

    async def get_partition_concurrency_async(self) -> int | None:
        return (await self._current_async()).partition_concurrency

    def set_partition_concurrency(self, value: int | None) -> None:
        self._write(_bounded, partition_concurrency=value)

    async def set_partition_concurrency_async(self, value: int | None) -> None:
        await asyncio.to_thread(self.set_partition_concurrency, value)

    @property
    def partition_worker_concurrency(self) -> int | None:
        return self._current().partition_worker_concurrency

    async def get_partition_worker_concurrency_async(self) -> int | None:
        return (await self._current_async()).partition_worker_concurrency

    def set_partition_worker_concurrency(self, value: int | None) -> None:
        self._write(_bounded, partition_worker_concurrency=value)

    async def set_partition_worker_concurrency_async(self, value: int | None) -> None:
        await asyncio.to_thread(self.set_partition_worker_concurrency, value)

    @property
    def partition_limiter(self) -> QueueRateLimit | None:
        latest = self._current()
        return _rate_limit(latest.partition_limiter_limit, latest.partition_limiter_period_ms)

    async def get_partition_limiter_async(self) -> QueueRateLimit | None:
        latest = await self._current_async()
        return _rate_limit(latest.partition_limiter_limit, latest.partition_limiter_period_ms)

    def set_partition_limiter(self, value: QueueRateLimit | None) -> None:
        limit, period_ms = limiter_columns("partition_limiter", value)
        self._write(_bounded, partition_limiter_limit=limit, partition_limiter_period_ms=period_ms)

    async def set_partition_limiter_async(self, value: QueueRateLimit | None) -> None:
        await asyncio.to_thread(self.set_partition_limiter, value)

    # -- the rate limiter and the polling interval ----------------------------------------

    @property
    def limiter(self) -> QueueRateLimit | None:
        latest = self._current()
        return _rate_limit(latest.limiter_limit, latest.limiter_period_ms)

    async def get_limiter_async(self) -> QueueRateLimit | None:
        latest = await self._current_async()
        return _rate_limit(latest.limiter_limit, latest.limiter_period_ms)

    def set_limiter(self, value: QueueRateLimit | None) -> None:
        limit, period_ms = limiter_columns("limiter", value)
        self._write(_bounded, limiter_limit=limit, limiter_period_ms=period_ms)

    async def set_limiter_async(self, value: QueueRateLimit | None) -> None:
        await asyncio.to_thread(self.set_limiter, value)

    @property
    def polling_interval_sec(self) -> float:
        """Recorded and reported (Celery delivers the workflows: nothing polls)."""
        return self._current().polling_interval_sec

    async def get_polling_interval_sec_async(self) -> float:
        return (await self._current_async()).polling_interval_sec

    def set_polling_interval_sec(self, value: float) -> None:
        if not isinstance(value, int | float) or value <= 0.0:
            raise ValueError("polling_interval_sec must be positive")
        self._write(_bounded, polling_interval_sec=float(value))

    async def set_polling_interval_sec_async(self, value: float) -> None:
        await asyncio.to_thread(self.set_polling_interval_sec, value)


def _bounded(limits: QueueLimits) -> None:
    """A changed queue's limits still hold together (DBOS's checks)."""
    not_negative("concurrency", limits.concurrency)
    not_negative("worker_concurrency", limits.worker_concurrency)
    at_least_one("partition_concurrency", limits.partition_concurrency)
    at_least_one("partition_worker_concurrency", limits.partition_worker_concurrency)
    check_bounds(
        limits.concurrency,
        limits.worker_concurrency,
        limits.partition_concurrency,
        limits.partition_worker_concurrency,
    )


def _rate_limit(limit: int | None, period_ms: int | None) -> QueueRateLimit | None:
    if limit is None or period_ms is None:
        return None
    return {"limit": limit, "period": period_ms / 1000}
