"""Enqueue latency: ``DBOS.start_workflow`` vs Celery's ``apply_async``, in the producer.

``start_workflow`` serializes the inputs, INSERTs the workflow's row (a synchronous
commit) and publishes the Celery message; ``apply_async`` publishes a message. Both
publish to the app's default queue, which no worker consumes (it is flushed after).
Each repetition times a batch of each, in a rotated order; the per-call median of a
batch is the repetition's value, and the ratio is taken within each repetition.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from bench.db import recreate_database
from bench.report import Figure, Result
from bench.settings import BROKER_URL, database_url
from bench.stats import interleaved, pairwise_ratios
from bench.workflows import configure, plain_ten_task, ten_steps
from celery_durable import DBOS

NAME = "enqueue"


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    calls: int  # per variant and repetition


FULL = Params(repetitions=15, calls=100)
QUICK = Params(repetitions=2, calls=5)


def _median_us(call: Callable[[], Any], calls: int) -> float:
    durations: list[float] = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        durations.append((time.perf_counter_ns() - started) / 1000)
    return float(statistics.median(durations))


def run(params: Params = FULL) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    configure(url)
    try:

        def start_workflow() -> None:
            DBOS.start_workflow(ten_steps)

        def apply_async() -> None:
            plain_ten_task.apply_async(args=("bench:enqueue", 0))

        for _ in range(10):  # connections to PostgreSQL and Redis, prepared statements
            start_workflow()
            apply_async()
        times = interleaved(
            params.repetitions,
            {
                "start_workflow": lambda: _median_us(start_workflow, params.calls),
                "apply_async": lambda: _median_us(apply_async, params.calls),
            },
        )
    finally:
        DBOS.destroy()
        broker.flushdb()
    return Result(
        benchmark=NAME,
        figures=[
            Figure.of("DBOS.start_workflow", times["start_workflow"], "µs", "INSERT + publish"),
            Figure.of("apply_async (plain task)", times["apply_async"], "µs", "publish"),
            Figure.of(
                "start_workflow ÷ apply_async",
                pairwise_ratios(times["start_workflow"], times["apply_async"]),
                "x",
                "pairwise",
            ),
        ],
        params=asdict(params),
    )
