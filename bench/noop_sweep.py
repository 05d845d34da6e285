"""No-op steps on every pool (issue 16): each side at its best over a sweep of settings.

The throughput benchmark's three kinds (:mod:`bench.throughput`): ten-step workflows of
no-op steps, plain Celery tasks making the same ten calls, and the ceiling (plain tasks
that also send the twelve synchronous INSERTs of the floor, here on at most
``bench.workflows.FLOOR_CONNECTIONS`` connections per process), drained side by side
by one worker for each setting of the sweep: prefork 2/4/8, threads 8/32, gevent
64/200. Per setting: the three rates, their pairwise ratios, and the worker's
connections, memory and CPU per workflow (worker and PostgreSQL backends). Then each
side's best setting, and the ratio of the bests (a ratio of medians of two settings,
not a pairwise one).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.pools import (
    Bench,
    Kind,
    Measured,
    Setting,
    plain_and_ceiling_cpu,
    ratio,
    usage_figures,
)
from bench.report import Figure, Result
from bench.settings import database_url
from bench.stats import median
from bench.throughput import Batches
from bench.workflows import floor_ten_task, plain_ten_task

NAME = "noop_sweep"
WORKFLOW_NAME = "bench.ten_steps"


@dataclass(frozen=True, kw_only=True)
class Params:
    settings: tuple[Setting, ...]
    repetitions: int
    warmup: int
    timeout_seconds: float


def _sweep(batch: int) -> tuple[Setting, ...]:
    return tuple(
        Setting(pool=pool, concurrency=concurrency, batch=batch)
        for pool, concurrency in (
            ("prefork", 2),
            ("prefork", 4),
            ("prefork", 8),
            ("threads", 8),
            ("threads", 32),
            ("gevent", 64),
            ("gevent", 200),
        )
    )


FULL = Params(settings=_sweep(2000), repetitions=2, warmup=100, timeout_seconds=600)
QUICK = Params(
    settings=(Setting(pool="threads", concurrency=2, batch=10),),
    repetitions=1,
    warmup=3,
    timeout_seconds=60,
)


def _workflows(batches: Batches, size: int) -> float:
    return batches.workflows(size, WORKFLOW_NAME)


def _plain(batches: Batches, size: int) -> float:
    return batches.plain(size, plain_ten_task)


def _ceiling(batches: Batches, size: int) -> float:
    return batches.plain(size, floor_ten_task)


KINDS: dict[str, Kind] = {"workflows": _workflows, "plain": _plain, "ceiling": _ceiling}


def figures(measured: Measured) -> list[Figure]:
    label = measured.setting.label
    return [
        Figure.of(f"{label}: plain Celery", measured.rates["plain"], "tasks/s"),
        Figure.of(f"{label}: celery_durable", measured.rates["workflows"], "wf/s"),
        Figure.of(f"{label}: ceiling", measured.rates["ceiling"], "tasks/s", "12 INSERTs"),
        Figure.of(
            f"{label}: celery_durable ÷ plain Celery",
            ratio(measured, "workflows", "plain"),
            "x",
            "pairwise",
        ),
        Figure.of(
            f"{label}: ceiling ÷ plain Celery", ratio(measured, "ceiling", "plain"), "x", "pairwise"
        ),
        *usage_figures(measured, "workflows", f"psycopg wait: {measured.psycopg_wait}"),
        *plain_and_ceiling_cpu(measured),
    ]


def bests(sweep: list[Measured]) -> list[Figure]:
    """Each side's best setting (highest median) and the ratio of the two bests."""

    def best(kind: str) -> tuple[float, str]:
        return max((median(item.rates[kind]), item.setting.label) for item in sweep)

    durable, durable_at = best("workflows")
    plain, plain_at = best("plain")
    ceiling, ceiling_at = best("ceiling")
    return [
        Figure.count("best: celery_durable", durable, "wf/s", durable_at),
        Figure.count("best: plain Celery", plain, "tasks/s", plain_at),
        Figure.count("best: ceiling", ceiling, "tasks/s", ceiling_at),
        Figure.count(
            "best celery_durable ÷ best plain Celery",
            durable / plain,
            "x",
            "ratio of medians of two settings",
        ),
        Figure.count(
            "best ceiling ÷ best plain Celery",
            ceiling / plain,
            "x",
            "ratio of medians of two settings",
        ),
    ]


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    bench = Bench(database_url(NAME), logs / NAME, params.timeout_seconds)
    sweep: list[Measured] = []
    try:
        for setting in params.settings:
            sweep.append(
                bench.measure(setting, KINDS, repetitions=params.repetitions, warmup=params.warmup)
            )
    finally:
        bench.close()
    return Result(
        benchmark=NAME,
        figures=[*(line for item in sweep for line in figures(item)), *bests(sweep)],
        params={**asdict(params), "worker_logs": str(logs / NAME)},
    )
