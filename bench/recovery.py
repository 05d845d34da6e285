"""Recovery latency: from SIGKILL of a worker to the workflow's completion elsewhere.

A workflow's second step hangs the first time it runs. Once it hangs, the worker's
whole process group is SIGKILLed (its PostgreSQL connection, and with it the
workflow's fence, dies with it) and a new worker is started at once. Its start-up
recovery sweep finds the workflow PENDING with no live owner, publishes it again, and
the workflow resumes after its recorded first step. Each repetition's new worker is
the next repetition's victim.
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
from bench.workflows import app, started_key
from celery_durable import DBOSClient

NAME = "recovery"


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    timeout_seconds: float


FULL = Params(repetitions=5, timeout_seconds=60)
QUICK = Params(repetitions=1, timeout_seconds=60)


def _wait_started(broker: redis.Redis, workflow_id: str, worker: Worker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while broker.get(started_key(workflow_id)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflow {workflow_id} did not start:\n{worker.log_tail()}")
        time.sleep(0.01)


def _completed_at(url: str, workflow_id: str, worker: Worker, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT status, completed_at_epoch_ms FROM celery_durable.workflow_status "
                "WHERE workflow_uuid = %s",
                (workflow_id,),
            ).fetchone()
            assert row is not None
            if row[0] == "SUCCESS":
                return float(row[1]) / 1000
            if row[0] not in ("ENQUEUED", "PENDING"):
                raise RuntimeError(f"workflow {workflow_id} ended {row[0]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"workflow {workflow_id} not recovered after {timeout}s:\n{worker.log_tail()}"
                )
            time.sleep(0.01)


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    client = DBOSClient(url, celery=app)
    create_tables(url)  # before the worker starts
    total: list[float] = []
    to_ready: list[float] = []
    ready_to_done: list[float] = []
    worker = start_worker(database_url=url, queues=[IDLE_QUEUE], log=logs / f"{NAME}-0.log")
    try:
        wait_ready(worker)
        for repetition in range(params.repetitions):
            handle = client.enqueue(
                {"workflow_name": "bench.hangs_once", "allow_unregistered": True}
            )
            _wait_started(broker, handle.workflow_id, worker, params.timeout_seconds)
            killed_at = time.time()
            kill_worker(worker)
            worker = start_worker(
                database_url=url,
                queues=[IDLE_QUEUE],
                log=logs / f"{NAME}-{repetition + 1}.log",
            )
            ready_at = wait_ready(worker)
            done_at = _completed_at(url, handle.workflow_id, worker, params.timeout_seconds)
            total.append(done_at - killed_at)
            to_ready.append(ready_at - killed_at)
            ready_to_done.append(done_at - ready_at)
    finally:
        kill_worker(worker)
        client.destroy()
    return Result(
        benchmark=NAME,
        figures=[
            Figure.of("SIGKILL → workflow SUCCESS on a new worker", total, "s"),
            Figure.of("SIGKILL → new worker ready", to_ready, "s", "worker start-up"),
            Figure.of(
                "worker ready → workflow SUCCESS", ready_to_done, "s", "start-up sweep + resume"
            ),
        ],
        params={**asdict(params), "worker_logs": str(logs)},
    )
