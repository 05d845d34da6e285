"""Existing Celery tasks from a workflow: ten ``DBOS.run_task`` calls against a plain
Celery chain of the same ten tasks.

One worker (``--pool=prefork --concurrency=2``, Redis, no result backend) consumes
both the workflows' queue and the tasks' queue. A batch of ``size`` chains
(``bench.add_one`` x 9, then ``bench.add_one_and_count``, which counts the chain done)
and a batch of ``size`` workflows (``bench.ten_tasks``: the same ten tasks, each
recorded in flight as the workflow parks, run, and reported in the worker that ran it,
which claims the workflow in the same statement and replays it to its next call)
alternate ``repeats`` times. Throughput = size / (the last completion - the clock read
before the batch was sent); the ratio is the median of each repetition's (pairwise).
The chain has no durability: a worker that dies mid-chain loses the rest of it.

Each task is measured at several amounts of work (``work_ms``: each task waits that
long, as a task making a request or a query does; 0 is a task that does nothing, the
worst case for the workflow, whose cost per call is then all overhead).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import redis
from celery import chain

from bench.db import recreate_database
from bench.report import Figure, Result
from bench.settings import BROKER_URL, database_url
from bench.workers import kill_worker, start_worker, wait_ready
from bench.workflows import TASK_QUEUE, add_one, add_one_and_count, configure
from celery_durable import DBOSClient

NAME = "task_calls"
WORKFLOW_QUEUE = "celery_durable_bench_task_workflows"


@dataclass(frozen=True)
class Params:
    size: int
    repeats: int
    # Each task's work in milliseconds (a wait), one comparison each.
    work_ms: tuple[int, ...] = (0, 5, 20)
    timeout: float = 600.0


FULL = Params(size=200, repeats=3)
QUICK = Params(size=5, repeats=1, work_ms=(0, 5))


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    redis.Redis.from_url(BROKER_URL).flushdb()
    configure(url)
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    worker = start_worker(
        database_url=url, queues=[WORKFLOW_QUEUE, TASK_QUEUE], log=logs / f"{NAME}-worker.log"
    )
    client = DBOSClient(url, BROKER_URL)
    figures: list[Figure] = []
    try:
        wait_ready(worker)
        _chains(2, 0, params.timeout)  # warm-up: pool processes, connections
        _workflows(client, url, 2, 0, params.timeout)
        for work_ms in params.work_ms:
            figures.extend(_compare(client, url, params, work_ms))
    finally:
        kill_worker(worker)
        client.destroy()
    return Result(benchmark=NAME, params=asdict(params), figures=figures)


def _compare(client: DBOSClient, url: str, params: Params, work_ms: int) -> list[Figure]:
    chains: list[float] = []
    workflows: list[float] = []
    for _ in range(params.repeats):
        chains.append(_chains(params.size, work_ms, params.timeout))
        workflows.append(_workflows(client, url, params.size, work_ms, params.timeout))
    # Pairwise: each batch of workflows against the batch of chains just before it (both
    # saw the same machine), then the median of those ratios.
    ratios = [workflow / chain for chain, workflow in zip(chains, workflows, strict=True)]
    work = f"tasks of {work_ms} ms" if work_ms else "tasks that do nothing"
    return [
        Figure.of(f"plain chain of ten tasks, {work}", chains, "chains/s"),
        Figure.of(f"workflow calling the ten tasks (run_task), {work}", workflows, "workflows/s"),
        Figure.of(
            f"workflow / chain, {work}", ratios, "x", note="pairwise; goal >= 0.8 (issue 25)"
        ),
    ]


def _chains(size: int, work_ms: int, timeout: float) -> float:
    counter = f"bench:chains:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(BROKER_URL)
    started = time.time()
    for _ in range(size):
        links = [add_one.s(0, work_ms), *(add_one.s(work_ms=work_ms) for _ in range(8))]
        tenth = add_one_and_count.s(counter, size, work_ms)
        # Each link names its queue: a chain's later tasks are routed one by one.
        chain(*(link.set(queue=TASK_QUEUE) for link in (*links, tenth))).apply_async()
    deadline = time.monotonic() + timeout
    while (last := client.get(f"{counter}:last")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{client.get(counter)}/{size} chains done after {timeout}s")
        time.sleep(0.05)
    return size / (float(last) - started)


def _workflows(client: DBOSClient, url: str, size: int, work_ms: int, timeout: float) -> float:
    started = time.time()
    ids = [
        client.enqueue(
            {"workflow_name": "bench.ten_tasks", "queue_name": WORKFLOW_QUEUE}, work_ms
        ).workflow_id
        for _ in range(size)
    ]
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), "
                "count(*) FILTER (WHERE status IN ('ERROR', 'CANCELLED')), "
                "max(completed_at_epoch_ms) FROM celery_durable.workflow_status "
                "WHERE workflow_uuid = ANY(%s)",
                (ids,),
            ).fetchone()
            assert row is not None
            succeeded, failed, last = row
            if failed:
                raise RuntimeError(f"{failed} workflow(s) failed")
            if succeeded == size:
                return size / (last / 1000 - started)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{succeeded}/{size} workflows done after {timeout}s")
            time.sleep(0.1)
