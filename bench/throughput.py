"""Throughput: ten-step workflows vs plain Celery tasks, through one prefork worker.

One ``celery worker --pool=prefork --concurrency=2`` subprocess (Redis broker) runs
both kinds, batch after batch, in a rotated order. Each batch is enqueued in full to a
queue of its own that the worker does not consume yet, so the producer does not
compete with the worker for the two cores; then the worker is told to consume it
(``add_consumer``). The rate is the steady drain: ``(batch - 1)`` divided by the time
from the batch's first completion to its last (the worker starts polling a new queue
up to a second after the command, which must not count):

- workflows (enqueued with ``DBOSClient``): ``completed_at_epoch_ms`` in PostgreSQL,
  read once the whole batch is SUCCESS;
- plain tasks (the same ten no-op calls, no result backend): each INCRs a Redis
  counter; the first and the last to finish record the time;
- the ceiling: plain tasks that also send the twelve synchronous INSERTs of the floor
  (:mod:`bench.floor`) that a ten-step workflow's budget allows on a worker (claim, ten
  checkpoints, outcome), on one connection per pool process, and nothing else. No
  design within the budget can beat it, so ``ceiling ÷ plain`` bounds the ratio that
  durability with synchronous commits allows on the machine, and ``celery_durable ÷
  ceiling`` is what the library's own code costs.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Task

from bench.db import create_tables, recreate_database
from bench.floor import InsertFloor
from bench.report import Figure, Result
from bench.settings import BROKER_URL, IDLE_QUEUE, database_url
from bench.stats import interleaved, pairwise_ratios
from bench.workers import Worker, counted_statements, kill_worker, start_worker, wait_ready
from bench.workflows import FLOOR_STATEMENTS, app, floor_ten_task, plain_ten_task, ten_steps
from celery_durable import DBOSClient

NAME = "throughput"
WORKFLOW_NAME = "bench.ten_steps"


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    batch: int  # workflows (and plain tasks) per batch
    warmup: int
    timeout_seconds: float


FULL = Params(repetitions=4, batch=2000, warmup=100, timeout_seconds=600)
QUICK = Params(repetitions=1, batch=20, warmup=4, timeout_seconds=60)


class Batches:
    """Enqueues a batch to a fresh queue, lets the worker drain it, times it."""

    def __init__(
        self,
        worker: Worker,
        client: DBOSClient,
        url: str,
        timeout: float,
        count_dir: Path | None = None,
    ) -> None:
        self.worker = worker
        self.count_dir = count_dir
        self.statements_per_workflow: list[float] = []
        # The machine's idle share between the batch's first and last completion.
        self.idle_fractions: dict[str, list[float]] = {}
        self._cpu: CpuSampler | None = None
        self.client = client
        self.url = url
        self.timeout = timeout
        self.redis = redis.Redis.from_url(BROKER_URL)
        assert ten_steps is not None  # registered: the worker imports the same module

    def _consume(self, queue: str) -> None:
        if self._cpu is not None:
            self._cpu.stop()
        self._cpu = CpuSampler()
        replies = app.control.add_consumer(
            queue, destination=[self.worker.hostname], reply=True, timeout=10
        )
        if not replies:
            raise RuntimeError(f"worker did not answer add_consumer:\n{self.worker.log_tail()}")

    def _record_idle(self, kind: str, first: float, last: float) -> None:
        assert self._cpu is not None
        samples, self._cpu = self._cpu.stop(), None
        inside = [sample for sample in samples if first <= sample[0] <= last]
        if len(inside) >= 2:
            (_, busy_0, idle_0), (_, busy_1, idle_1) = inside[0], inside[-1]
            idle = idle_1 - idle_0
            self.idle_fractions.setdefault(kind, []).append(idle / (busy_1 - busy_0 + idle))

    def _stop_consuming(self, queue: str) -> None:
        app.control.cancel_consumer(
            queue, destination=[self.worker.hostname], reply=True, timeout=10
        )

    def workflows(
        self, size: int, name: str = WORKFLOW_NAME, queue: str = "", args: tuple[Any, ...] = ()
    ) -> float:
        """Workflows (of workflow ``name``, called with ``args``) per second for one batch
        of ``size``, enqueued to ``queue`` (by default, a fresh one)."""
        first, last = self.drain_workflows(size, name, queue, args)
        # Completion times are in ms: a tiny batch (a warm-up) may finish within one,
        # all in one group commit.
        return (size - 1) / max(last - first, 0.001)

    def drain_workflows(
        self, size: int, name: str = WORKFLOW_NAME, queue: str = "", args: tuple[Any, ...] = ()
    ) -> tuple[float, float]:
        """As :meth:`workflows`; returns when the first and the last finished (epoch s)."""
        queue = queue or f"bench-tp-wf-{uuid.uuid4().hex[:8]}"
        for _ in range(size):
            self.client.enqueue(
                {"workflow_name": name, "queue_name": queue, "allow_unregistered": True}, *args
            )
        count_dir = self.count_dir
        counted = counted_statements(count_dir) if count_dir else 0
        self._consume(queue)
        try:
            first, last = self._wait_workflows(queue, size)
        finally:
            self._stop_consuming(queue)
        if count_dir:
            counted = counted_statements(count_dir) - counted
            self.statements_per_workflow.append(counted / size)
        self._record_idle("workflows", first, last)
        return first, last

    def _wait_workflows(self, queue: str, size: int) -> tuple[float, float]:
        deadline = time.monotonic() + self.timeout
        with psycopg.connect(self.url, autocommit=True) as connection:
            while True:
                row = connection.execute(
                    "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), "
                    "count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'ENQUEUED', 'PENDING')), "
                    "min(completed_at_epoch_ms), max(completed_at_epoch_ms) "
                    "FROM celery_durable.workflow_status WHERE queue_name = %s",
                    (queue,),
                ).fetchone()
                assert row is not None
                succeeded, failed, first_completed, last_completed = row
                if failed:
                    raise RuntimeError(f"{failed} workflow(s) failed:\n{self.worker.log_tail()}")
                if succeeded == size:
                    return first_completed / 1000, last_completed / 1000
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{succeeded}/{size} workflows done after {self.timeout}s:\n"
                        f"{self.worker.log_tail()}"
                    )
                time.sleep(0.2)

    def plain(self, size: int, task: Task[Any, Any] = plain_ten_task) -> float:
        """Plain tasks per second for one batch of ``size``."""
        queue = f"bench-tp-plain-{uuid.uuid4().hex[:8]}"
        counter = f"bench:done:{queue}"
        for _ in range(size):
            task.apply_async(args=(counter, size), queue=queue)
        self._consume(queue)
        try:
            first, last = self._wait_plain(counter, size)
        finally:
            self._stop_consuming(queue)
        self._record_idle(task.name, first, last)
        return (size - 1) / (last - first)

    def _wait_plain(self, counter: str, size: int) -> tuple[float, float]:
        deadline = time.monotonic() + self.timeout
        while True:
            last: Any = self.redis.get(f"{counter}:last")
            if last is not None:
                first: Any = self.redis.get(f"{counter}:first")
                return float(first), float(last)
            if time.monotonic() > deadline:
                done = int(self.redis.get(counter) or 0)
                raise TimeoutError(
                    f"{done}/{size} plain tasks done after {self.timeout}s:\n"
                    f"{self.worker.log_tail()}"
                )
            time.sleep(0.05)


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    redis.Redis.from_url(BROKER_URL).flushdb()
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    log = logs / f"{NAME}-worker.log"
    count_dir = logs / f"{NAME}-statements"
    client = DBOSClient(url, celery=app)
    create_tables(url)  # before the worker starts
    InsertFloor(url).close()  # and the floor's table
    worker = start_worker(database_url=url, queues=[IDLE_QUEUE], log=log, count_dir=count_dir)
    try:
        wait_ready(worker)
        batches = Batches(worker, client, url, params.timeout_seconds, count_dir)
        batches.workflows(params.warmup)  # every pool process opens its connections
        batches.plain(params.warmup)
        batches.plain(params.warmup, floor_ten_task)
        batches.statements_per_workflow.clear()
        batches.idle_fractions.clear()
        rates = interleaved(
            params.repetitions,
            {
                "workflows": lambda: batches.workflows(params.batch),
                "plain": lambda: batches.plain(params.batch),
                "floor": lambda: batches.plain(params.batch, floor_ten_task),
            },
        )
    finally:
        kill_worker(worker)
        client.destroy()
    return Result(
        benchmark=NAME,
        figures=[
            Figure.of(
                f"celery_durable: {params.batch} ten-step workflows",
                rates["workflows"],
                "wf/s",
                "1 worker, prefork, concurrency 2",
            ),
            Figure.of(
                f"plain Celery: {params.batch} tasks of 10 no-op calls",
                rates["plain"],
                "tasks/s",
                "same worker",
            ),
            Figure.of(
                f"ceiling: plain tasks + {FLOOR_STATEMENTS} synchronous INSERTs",
                rates["floor"],
                "tasks/s",
                "same worker; the floor of the budget",
            ),
            Figure.of(
                "celery_durable ÷ plain Celery",
                pairwise_ratios(rates["workflows"], rates["plain"]),
                "x",
                "pairwise",
            ),
            Figure.of(
                "ceiling ÷ plain Celery",
                pairwise_ratios(rates["floor"], rates["plain"]),
                "x",
                "pairwise: the best any 12-statement design could do",
            ),
            Figure.of(
                "celery_durable ÷ ceiling",
                pairwise_ratios(rates["workflows"], rates["floor"]),
                "x",
                "pairwise",
            ),
            *(
                Figure.of(
                    f"idle CPU while draining: {label}",
                    [100 * fraction for fraction in batches.idle_fractions[kind]],
                    "%",
                    "/proc/stat, both cores",
                )
                for label, kind in (
                    ("workflows", "workflows"),
                    ("plain", plain_ten_task.name),
                    ("ceiling", floor_ten_task.name),
                )
                if batches.idle_fractions.get(kind)  # a tiny batch drains between samples
            ),
            Figure.of(
                "statements per workflow, in the worker",
                batches.statements_per_workflow,
                "stmt",
                "counted in the pool processes",
            ),
        ],
        params={**asdict(params), "worker_log": str(log)},
    )


class CpuSampler:
    """Samples the machine's CPU times every 50 ms in a thread, until stopped."""

    def __init__(self) -> None:
        self._samples: list[tuple[float, float, float]] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(0.05):
            self._samples.append((time.time(), *cpu_times()))

    def stop(self) -> list[tuple[float, float, float]]:
        """Stops sampling; returns ``(epoch seconds, busy, idle)`` samples."""
        self._stopped.set()
        self._thread.join()
        return self._samples


def cpu_times() -> tuple[float, float]:
    """The machine's (busy, idle) CPU time so far, in clock ticks (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [float(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, idle
