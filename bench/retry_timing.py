"""Retry timing: when a step's attempts really start, through a real worker.

A step with ``max_attempts=4, interval_seconds=I, backoff_rate=2`` fails three times
and succeeds on its fourth attempt; each wait is a Celery countdown (the worker slot
is free meanwhile). The ideal schedule starts the attempts at 0, I, 3I and 7I; the
observed offsets are read from ``DBOS.list_workflow_steps(id)[0]["attempt_history"]``
(each attempt's start, relative to the first). Several workflows run at once on one
``--concurrency=2`` prefork worker.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from bench.db import create_tables, recreate_database
from bench.report import Figure, Result
from bench.settings import BROKER_URL, IDLE_QUEUE, database_url
from bench.workers import kill_worker, start_worker, wait_ready
from bench.workflows import app, retry_workflow_name
from celery_durable import DBOSClient

NAME = "retry_timing"
ATTEMPTS = 4


@dataclass(frozen=True, kw_only=True)
class Params:
    workflows: int
    interval_ms: int  # one of bench.workflows.RETRY_INTERVALS_MS
    timeout_seconds: float


FULL = Params(workflows=5, interval_ms=1000, timeout_seconds=60)
QUICK = Params(workflows=1, interval_ms=100, timeout_seconds=30)


def ideal_offsets_ms(interval_ms: int) -> list[float]:
    """0, I, 3I, 7I: attempt k+1 starts I * 2**(k-1) after attempt k fails."""
    offsets = [0.0]
    for attempt in range(1, ATTEMPTS):
        offsets.append(offsets[-1] + interval_ms * 2.0 ** (attempt - 1))
    return offsets


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    redis.Redis.from_url(BROKER_URL).flushdb()
    log = (log_dir or Path(tempfile.mkdtemp(prefix="bench-"))) / f"{NAME}-worker.log"
    client = DBOSClient(url, celery=app)
    create_tables(url)  # before the worker starts
    worker = start_worker(database_url=url, queues=[IDLE_QUEUE], log=log)
    try:
        wait_ready(worker)
        handles = [
            client.enqueue(
                {
                    "workflow_name": retry_workflow_name(params.interval_ms),
                    "allow_unregistered": True,
                }
            )
            for _ in range(params.workflows)
        ]
        deadline = time.monotonic() + params.timeout_seconds
        for handle in handles:
            remaining = max(1.0, deadline - time.monotonic())
            if handle.get_result(timeout=remaining) != ATTEMPTS:
                raise AssertionError(f"workflow {handle.workflow_id} ended early")
        histories = [
            client.list_workflow_steps(handle.workflow_id)[0]["attempt_history"]
            for handle in handles
        ]
    except TimeoutError as error:
        raise TimeoutError(f"{error}\n{worker.log_tail()}") from error
    finally:
        kill_worker(worker)
        client.destroy()
    ideal = ideal_offsets_ms(params.interval_ms)
    figures: list[Figure] = []
    for attempt in range(1, ATTEMPTS):
        offsets = [
            float(history[attempt]["started_at_epoch_ms"] - history[0]["started_at_epoch_ms"])
            for history in histories
        ]
        figures.append(
            Figure.of(
                f"attempt {attempt + 1} starts at (ideal {ideal[attempt] / 1000:g} s)",
                [offset / 1000 for offset in offsets],
                "s",
            )
        )
        figures.append(
            Figure.of(
                f"attempt {attempt + 1} late by",
                [offset - ideal[attempt] for offset in offsets],
                "ms",
                "observed - ideal",
            )
        )
    return Result(
        benchmark=NAME,
        figures=figures,
        params={
            **asdict(params),
            "attempt_histories": [
                [{**entry, "error": repr(entry["error"])} for entry in history]
                for history in histories
            ],
            "worker_log": str(log),
        },
    )
