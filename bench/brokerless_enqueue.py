"""Enqueue without a broker: the latency a worker's LISTEN/NOTIFY relay adds.

``DBOSClient(url)`` with no broker commits the workflow's row and NOTIFYs; a worker's
relay advances its dispatch generation and publishes the Celery message. This measures,
for a zero-step workflow on one idle ``celery worker`` (threads pool), the time from the
row's creation to its execution's start (``started_at - created_at`` in PostgreSQL, same
machine) with a client that publishes itself and with one that has no broker,
alternating; the added latency is their difference within each pair.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import redis

from bench.db import create_tables, recreate_database
from bench.report import Figure, Result
from bench.settings import BROKER_URL, IDLE_QUEUE, database_url
from bench.workers import Worker, kill_worker, start_worker, wait_ready
from bench.workflows import app
from celery_durable import DBOSClient

NAME = "brokerless_enqueue"
# The goal of issue 24: a median under 50 ms added by publishing through the worker.
GOAL_MS = 50.0


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    timeout_seconds: float


FULL = Params(repetitions=100, timeout_seconds=30)
QUICK = Params(repetitions=3, timeout_seconds=30)


def _dispatch_ms(url: str, workflow_id: str, worker: Worker, timeout: float) -> float:
    """created_at → started_at of a workflow, once it finished."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT status, started_at_epoch_ms - created_at_epoch_ms "
                "FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
                (workflow_id,),
            ).fetchone()
            if row is not None and row[0] == "SUCCESS":
                return float(row[1])
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} did not run:\n{worker.log_tail()}")
            time.sleep(0.005)


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    redis.Redis.from_url(BROKER_URL).flushdb()
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    create_tables(url)
    publishing = DBOSClient(url, celery=app)
    brokerless = DBOSClient(url)
    worker = start_worker(
        database_url=url, queues=[IDLE_QUEUE], log=logs / f"{NAME}.log", pool="threads"
    )
    options = {"workflow_name": "bench.zero_steps", "queue_name": IDLE_QUEUE}
    with_broker: list[float] = []
    without_broker: list[float] = []
    try:
        wait_ready(worker)
        time.sleep(1.0)  # the relay's LISTEN starts after the worker's registration
        for repetition in range(params.repetitions):
            pair = (publishing, brokerless) if repetition % 2 else (brokerless, publishing)
            for client in pair:
                handle = client.enqueue(options)  # type: ignore[arg-type]
                latency = _dispatch_ms(url, handle.workflow_id, worker, params.timeout_seconds)
                (without_broker if client is brokerless else with_broker).append(latency)
    finally:
        kill_worker(worker)
        publishing.destroy()
        brokerless.destroy()
    added = [b - a for a, b in zip(with_broker, without_broker, strict=True)]
    return Result(
        benchmark=NAME,
        figures=[
            Figure.of("created → started, client publishes", with_broker, "ms"),
            Figure.of("created → started, no broker (NOTIFY)", without_broker, "ms"),
            Figure.of(
                "added by the relay",
                added,
                "ms",
                f"pairwise; goal: median < {GOAL_MS:g} ms",
            ),
        ],
        params=asdict(params),
    )
