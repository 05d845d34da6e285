"""One worker per pool setting, batches drained side by side, and what the worker cost.

Shared by :mod:`bench.io_bound`, :mod:`bench.noop_sweep` and :mod:`bench.gevent_overlap`.
For each setting (a Celery pool and its concurrency) one ``celery worker`` subprocess
runs every kind of batch (celery_durable workflows, plain Celery tasks, the ceiling),
interleaved as in :mod:`bench.throughput`, which drains them: each batch is enqueued
from this one process to a fresh queue, then consumed. While a batch runs,
:class:`bench.resources.ResourceSampler` follows the worker's connections, memory and
CPU and its PostgreSQL backends' CPU.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from bench.db import create_tables, database_name, recreate_database
from bench.floor import InsertFloor
from bench.report import Figure
from bench.resources import ResourceSampler, Usage
from bench.settings import BROKER_URL, IDLE_QUEUE
from bench.stats import interleaved, pairwise_ratios
from bench.throughput import Batches
from bench.workers import Worker, kill_worker, start_worker, wait_ready
from bench.workflows import app
from celery_durable import DBOSClient

# A kind of batch: drains ``size`` of its kind through the worker, returns the rate.
Kind = Callable[[Batches, int], float]


@dataclass(frozen=True, kw_only=True)
class Setting:
    pool: str  # Celery's --pool
    concurrency: int
    batch: int  # workflows (and tasks) per batch

    @property
    def label(self) -> str:
        return f"{self.pool} -c {self.concurrency}"


@dataclass(kw_only=True)
class Measured:
    """One setting's rates and usage, one value per repetition for each kind."""

    setting: Setting
    rates: dict[str, list[float]]
    usage: dict[str, list[Usage]]
    psycopg_wait: str
    republished: int  # workflows the sweep published again (each a second delivery)

    def per_item_ms(self, kind: str, attribute: str) -> list[float]:
        """A CPU figure of each repetition, in ms per workflow (or task) of the batch."""
        batch = self.setting.batch
        return [1000 * getattr(usage, attribute) / batch for usage in self.usage[kind]]


@dataclass
class Bench:
    """A benchmark database, its producer and the worker logs' folder."""

    url: str
    logs: Path
    timeout_seconds: float
    client: DBOSClient = field(init=False)

    def __post_init__(self) -> None:
        recreate_database(self.url)
        redis.Redis.from_url(BROKER_URL).flushdb()
        create_tables(self.url)  # before any worker starts
        InsertFloor(self.url).close()  # and the floor's table
        self.client = DBOSClient(self.url, celery=app)

    def close(self) -> None:
        self.client.destroy()

    def start(self, setting: Setting, name: str) -> Worker:
        worker = start_worker(
            database_url=self.url,
            queues=[IDLE_QUEUE],
            log=self.logs / f"{name}-{setting.pool}-{setting.concurrency}.log",
            concurrency=setting.concurrency,
            pool=setting.pool,
        )
        try:
            wait_ready(worker)
            _wait_for_remote_control(worker)
        except BaseException:
            kill_worker(worker)
            raise
        return worker

    def measure(
        self, setting: Setting, kinds: dict[str, Kind], *, repetitions: int, warmup: int
    ) -> Measured:
        """Starts a worker for ``setting``, warms it up, drains every kind's batches."""
        worker = self.start(setting, "pools")
        wait = redis.Redis.from_url(BROKER_URL).get(f"{worker.ready_key}:psycopg_wait")
        republished = self.republished()
        try:
            batches = Batches(worker, self.client, self.url, self.timeout_seconds)
            for kind in kinds.values():
                kind(batches, warmup)  # every process and thread opens its connections
            sampler = ResourceSampler(worker.process.pid, self.url, database_name(self.url))
            usage: dict[str, list[Usage]] = {name: [] for name in kinds}

            def timed(name: str) -> float:
                sampler.start()
                try:
                    return kinds[name](batches, setting.batch)
                finally:
                    usage[name].append(sampler.stop())

            rates = interleaved(
                repetitions, {name: functools.partial(timed, name) for name in kinds}
            )
        finally:
            kill_worker(worker)
        return Measured(
            setting=setting,
            rates=rates,
            usage=usage,
            psycopg_wait=wait.decode() if isinstance(wait, bytes) else "unknown",
            republished=self.republished() - republished,
        )

    def republished(self) -> int:
        """Workflows published more than once so far (a sweep found them overdue)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM celery_durable.workflow_status WHERE dispatch_generation > 0"
            ).fetchone()
        return int(row[0]) if row else 0


def _wait_for_remote_control(worker: Worker, timeout_seconds: float = 30.0) -> None:
    """Waits until the worker answers a ping. A gevent worker subscribes to remote
    control only after ``worker_ready``, and a broadcast sent before is lost."""
    deadline = time.monotonic() + timeout_seconds
    while not app.control.ping(destination=[worker.hostname], timeout=0.5):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker does not answer a ping:\n{worker.log_tail()}")


def ratio(measured: Measured, numerator: str, denominator: str) -> list[float]:
    return pairwise_ratios(measured.rates[numerator], measured.rates[denominator])


def usage_figures(measured: Measured, kind: str, note: str) -> list[Figure]:
    """The worker's connections and RSS, and CPU per workflow, while ``kind`` drained."""
    label = measured.setting.label
    usage = measured.usage[kind]
    return [
        Figure.count(
            f"{label}: workflows published again by a sweep",
            measured.republished,
            "wf",
            "0: every workflow delivered once",
        ),
        Figure.of(
            f"{label}: worker's PostgreSQL connections (peak)",
            [float(item.peak_connections) for item in usage],
            "conn",
            "pg_stat_activity rows of the worker's sockets",
        ),
        Figure.of(
            f"{label}: worker RSS (peak, all processes)",
            [item.rss_bytes / 2**20 for item in usage],
            "MiB",
            note,
        ),
        Figure.of(
            f"{label}: worker CPU per workflow",
            measured.per_item_ms(kind, "worker_cpu_seconds"),
            "ms",
            "all the worker's processes, /proc",
        ),
        Figure.of(
            f"{label}: PostgreSQL backends' CPU per workflow",
            measured.per_item_ms(kind, "backend_cpu_seconds"),
            "ms",
            "the worker's backends, /proc",
        ),
    ]


def plain_and_ceiling_cpu(measured: Measured) -> list[Figure]:
    """CPU per task of the plain Celery side, and of the ceiling (worker and backends)."""
    label = measured.setting.label
    return [
        Figure.of(
            f"{label}: plain Celery worker CPU per task",
            measured.per_item_ms("plain", "worker_cpu_seconds"),
            "ms",
            "all the worker's processes, /proc",
        ),
        Figure.of(
            f"{label}: ceiling worker CPU per task",
            measured.per_item_ms("ceiling", "worker_cpu_seconds"),
            "ms",
            "all the worker's processes, /proc",
        ),
        Figure.of(
            f"{label}: ceiling PostgreSQL backends' CPU per task",
            measured.per_item_ms("ceiling", "backend_cpu_seconds"),
            "ms",
            "12 INSERTs; the worker's backends, /proc",
        ),
    ]
