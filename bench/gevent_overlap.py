"""Under gevent, do PostgreSQL waits and durable steps overlap? (issue 16)

Two questions, each with N concurrent 200 ms waits (50 in the full run): if they
overlap the whole takes about 0.2 s; if they take turns, N x 0.2 s.

- psycopg 3 alone (:mod:`bench.gevent_psycopg`, in a subprocess): N greenlets, each
  ``SELECT pg_sleep(0.2)`` on a connection of its own, with psycopg imported after
  gevent's monkeypatching (as in a ``-P gevent`` worker) and before it.
- celery_durable: N workflows of one step that sleeps 200 ms (``bench.one_wait_200ms``),
  enqueued to one queue, then consumed by one ``-P gevent -c 200`` worker. From the
  steps' recorded start and end (``operation_outputs``): the span from the first start
  to the last end, and the most steps running at one moment.

Then the connections a worker needs however many workflows wait at once: 1,000
workflows of one step that sleeps 10 s (``bench.one_wait``, an API call that takes its
time) on one ``-P gevent -c 1000`` worker: the most steps waiting at one moment, the
worker's PostgreSQL connections at their peak, and its memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from bench.db import database_name
from bench.pools import Bench, Setting
from bench.report import Figure, Result
from bench.resources import ResourceSampler
from bench.settings import ROOT, database_url
from bench.throughput import Batches
from bench.workers import kill_worker

NAME = "gevent_overlap"
WORKFLOW_NAME = "bench.one_wait_200ms"
WAITING_WORKFLOW_NAME = "bench.one_wait"


@dataclass(frozen=True, kw_only=True)
class Params:
    waits: int  # concurrent 200 ms waits
    concurrency: int  # the gevent worker's
    repetitions: int
    waiting: int  # workflows waiting at once, on a worker of that concurrency
    waiting_seconds: float  # how long each waits
    timeout_seconds: float


FULL = Params(
    waits=50, concurrency=200, repetitions=3, waiting=1000, waiting_seconds=10, timeout_seconds=300
)
QUICK = Params(
    waits=3, concurrency=4, repetitions=1, waiting=3, waiting_seconds=0.2, timeout_seconds=60
)


def psycopg_alone(url: str, waits: int, order: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.gevent_psycopg", url, str(waits), order],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=waits * 0.2 + 60,
    )
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def step_intervals(url: str, queue: str) -> list[tuple[int, int]]:
    """Each step's (start, end) in epoch ms, for the workflows of ``queue``."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT o.started_at_epoch_ms, o.completed_at_epoch_ms "
            "FROM celery_durable.operation_outputs o "
            "JOIN celery_durable.workflow_status w USING (workflow_uuid) "
            "WHERE w.queue_name = %s",
            (queue,),
        ).fetchall()
    return [(int(start), int(end)) for start, end in rows]


def most_at_once(intervals: list[tuple[int, int]]) -> int:
    """The most intervals open at one moment (an end before a start at the same ms)."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


@dataclass(kw_only=True)
class Overlap:
    """Per repetition: the span (s), the most steps at once, the worker's peak
    connections and its peak RSS (MiB)."""

    spans: list[float]
    peaks: list[float]
    connections: list[float]
    rss_mib: list[float]


def _durable(
    params: Params,
    logs: Path,
    *,
    workflows: int,
    concurrency: int,
    name: str,
    args: tuple[float, ...] = (),
    repetitions: int,
) -> Overlap:
    """``workflows`` one-step workflows of ``name`` at once on one gevent worker."""
    url = database_url(NAME)
    bench = Bench(url, logs, params.timeout_seconds)
    setting = Setting(pool="gevent", concurrency=concurrency, batch=workflows)
    measured = Overlap(spans=[], peaks=[], connections=[], rss_mib=[])
    try:
        worker = bench.start(setting, NAME)
        try:
            batches = Batches(worker, bench.client, url, params.timeout_seconds)
            sampler = ResourceSampler(worker.process.pid, url, database_name(url))
            for _ in range(repetitions):
                queue = f"bench-overlap-{uuid.uuid4().hex[:8]}"
                sampler.start()
                batches.drain_workflows(workflows, name, queue=queue, args=args)
                usage = sampler.stop()
                measured.connections.append(float(usage.peak_connections))
                measured.rss_mib.append(usage.rss_bytes / 2**20)
                intervals = step_intervals(url, queue)
                measured.spans.append(
                    (max(end for _, end in intervals) - min(start for start, _ in intervals)) / 1000
                )
                measured.peaks.append(float(most_at_once(intervals)))
        finally:
            kill_worker(worker)
    finally:
        bench.close()
    return measured


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    url = database_url(NAME)
    overlap = _durable(
        params,
        logs / NAME,
        workflows=params.waits,
        concurrency=params.concurrency,
        name=WORKFLOW_NAME,
        repetitions=params.repetitions,
    )
    waiting = _durable(
        params,
        logs / f"{NAME}-waiting",
        workflows=params.waiting,
        concurrency=params.waiting,
        name=WAITING_WORKFLOW_NAME,
        args=(params.waiting_seconds,),
        repetitions=1,
    )
    after = psycopg_alone(url, params.waits, "after")
    before = psycopg_alone(url, params.waits, "before")
    n = params.waits
    return Result(
        benchmark=NAME,
        figures=[
            Figure.count(
                f"psycopg: {n} x pg_sleep(0.2), imported after the patch",
                float(str(after["seconds"])),
                "s",
                f"{n} greenlets and connections; wait: {after['wait']}",
            ),
            Figure.count(
                f"psycopg: {n} x pg_sleep(0.2), imported before the patch",
                float(str(before["seconds"])),
                "s",
                f"wait: {before['wait']}",
            ),
            Figure.of(
                f"celery_durable: {n} workflows of one 200 ms step, first start → last end",
                overlap.spans,
                "s",
                f"1 worker, gevent -c {params.concurrency}",
            ),
            Figure.of(f"celery_durable: most of the {n} steps at once", overlap.peaks, "steps"),
            Figure.of(
                "celery_durable: worker's PostgreSQL connections (peak)",
                overlap.connections,
                "conn",
                "pg_stat_activity rows of the worker's sockets",
            ),
            Figure.of(
                f"celery_durable: most of {params.waiting} workflows waiting in a "
                f"{params.waiting_seconds:g} s step at once",
                waiting.peaks,
                "steps",
                f"1 worker, gevent -c {params.waiting}",
            ),
            Figure.of(
                f"celery_durable: worker's PostgreSQL connections (peak), {params.waiting} waiting",
                waiting.connections,
                "conn",
                "pg_stat_activity rows of the worker's sockets",
            ),
            Figure.of(
                f"celery_durable: worker RSS (peak), {params.waiting} waiting",
                waiting.rss_mib,
                "MiB",
            ),
            Figure.of(
                f"celery_durable: {params.waiting} workflows of one {params.waiting_seconds:g} s "
                "step, first start → last end",
                waiting.spans,
                "s",
            ),
        ],
        params={**asdict(params), "worker_logs": str(logs / NAME)},
    )
