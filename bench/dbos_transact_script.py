"""DBOS Transact measured the way the harness measures celery_durable.

Runs in its own virtualenv (``bench/.dbos-venv``, made by :mod:`bench.dbos_transact`),
imports only DBOS and its dependencies, and prints one JSON document on stdout:

- per-step overhead: a 10-step workflow called in-process vs the same 10 plain calls,
  a 0-step workflow, and the INSERT floor on the same server, interleaved in rotated
  order, one value per repetition (the per-call median of a batch);
- statements and commits per workflow (SQLAlchemy events on DBOS's system engine,
  this thread only);
- throughput: batches of 10-step workflows enqueued with ``DBOSClient`` on a queue no
  process listens to yet, then drained by this process once the queue is registered;
  the rate is ``(batch - 1)`` over the time from the first completion to the last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import psycopg
from dbos import DBOS, DBOSClient, DBOSConfig
from sqlalchemy import event


@DBOS.step()
def noop(index: int) -> int:
    return index


@DBOS.workflow()
def ten_steps() -> int:
    return sum(noop(index) for index in range(10))


@DBOS.workflow()
def zero_steps() -> int:
    return 0


def plain_noop(index: int) -> int:
    return index


def plain_ten() -> int:
    return sum(plain_noop(index) for index in range(10))


def median_call_us(call: Callable[[], Any], calls: int) -> float:
    durations = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        durations.append((time.perf_counter_ns() - started) / 1000)
    return float(statistics.median(durations))


def plain_loop_us(loops: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(loops):
        plain_ten()
    return (time.perf_counter_ns() - started) / 1000 / loops


class Floor:
    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id bigint PRIMARY KEY, payload text NOT NULL)"
        )
        self.next_id = 0

    def measure(self, inserts: int) -> float:
        durations = []
        for _ in range(inserts):
            self.next_id += 1
            started = time.perf_counter_ns()
            self.connection.execute(
                "INSERT INTO bench_floor (id, payload) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (self.next_id, "42"),
            )
            durations.append((time.perf_counter_ns() - started) / 1000)
        return float(statistics.median(durations))


def interleaved(
    repetitions: int, variants: dict[str, Callable[[], float]]
) -> dict[str, list[float]]:
    names = list(variants)
    values: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(variants[name]())
    return values


def count_sql(engine: Any, workflows: int) -> dict[str, float]:
    thread = threading.get_ident()
    tallies = {"statements": 0, "commits": 0}

    def on_statement(*args: Any) -> None:
        if threading.get_ident() == thread:
            tallies["statements"] += 1

    def on_commit(*args: Any) -> None:
        if threading.get_ident() == thread:
            tallies["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        for _ in range(workflows):
            ten_steps()
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
    return {name: value / workflows for name, value in tallies.items()}


def drain_rate(client: DBOSClient, batch: int, timeout: float) -> float:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    for _ in range(batch):
        client.enqueue({"workflow_name": "ten_steps", "queue_name": queue})
    DBOS.register_queue(queue)
    deadline = time.monotonic() + timeout
    while True:
        done = DBOS.list_workflows(
            queue_name=queue, status=["SUCCESS", "ERROR"], load_input=False, load_output=False
        )
        if len(done) == batch:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)}/{batch} DBOS workflows done after {timeout}s")
        time.sleep(0.5)
    if any(status.status != "SUCCESS" for status in done):
        raise RuntimeError("a DBOS workflow failed")
    completed = [float(status.completed_at or status.updated_at or 0) for status in done]
    return (batch - 1) / ((max(completed) - min(completed)) / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--workflows", type=int, default=10)
    parser.add_argument("--inserts", type=int, default=200)
    parser.add_argument("--plain-loops", type=int, default=20_000)
    parser.add_argument("--counted-workflows", type=int, default=20)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    config: DBOSConfig = {
        "name": "celery_durable_bench_dbos",
        "system_database_url": args.database_url,
        "log_level": "WARNING",
    }
    dbos = DBOS(config=config)
    DBOS.launch()
    floor = Floor(args.database_url)
    try:
        for _ in range(5):
            ten_steps()
            zero_steps()
        floor.measure(20)
        times = interleaved(
            args.repetitions,
            {
                "ten": lambda: median_call_us(ten_steps, args.workflows),
                "zero": lambda: median_call_us(zero_steps, args.workflows),
                "plain": lambda: plain_loop_us(args.plain_loops),
                "floor": lambda: floor.measure(args.inserts),
            },
        )
        counts = count_sql(dbos._sys_db.engine, args.counted_workflows)
        client = DBOSClient(system_database_url=args.database_url)
        try:
            rates = [drain_rate(client, args.batch, args.timeout) for _ in range(args.batches)]
        finally:
            client.destroy()
    finally:
        floor.connection.close()
        DBOS.destroy()

    print(
        json.dumps(
            {
                "version": version("dbos"),
                "times_us": times,
                "counts_per_workflow": counts,
                "rates": rates,
            }
        )
    )


if __name__ == "__main__":
    main()
