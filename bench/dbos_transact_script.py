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

With ``--mode=messaging`` it measures what :mod:`bench.messaging` measures instead, in
this one process (DBOS runs workflows in threads of the process that launched it): a
workflow started in the background waits in ``DBOS.recv``; the main thread sends it a
message and the step after ``recv`` records when it started; and a ``DBOS.get_event``
waiting in a thread for the event a workflow sets once it receives a message. DBOS
wakes both through LISTEN/NOTIFY with its defaults (messages: a trigger's
``pg_notify`` at the sender's commit; events: notified after the commit by a thread
that coalesces them every ``notification_coalesce_sec``, 10 ms).
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


MESSAGE_TOPIC = "bench.ping"
EVENT_TOPIC = "bench.go"
EVENT_KEY = "bench.done"
RECV_TIMEOUT_SECONDS = 300


@DBOS.step()
def started_at() -> float:
    return time.time()


@DBOS.workflow()
def recv_then_step() -> dict[str, Any]:
    message = DBOS.recv(MESSAGE_TOPIC, timeout_seconds=RECV_TIMEOUT_SECONDS)
    return {"message": message, "started_at": started_at()}


@DBOS.workflow()
def recv_then_set_event() -> dict[str, Any]:
    message = DBOS.recv(EVENT_TOPIC, timeout_seconds=RECV_TIMEOUT_SECONDS)
    set_at = time.time()  # the benchmark's probe, as in bench.workflows
    DBOS.set_event(EVENT_KEY, set_at)
    return {"message": message, "set_at": set_at}


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


def wait_in_recv(workflow_id: str, timeout: float) -> None:
    """Until the workflow waits in ``recv``: DBOS records the wait's deadline (a
    ``DBOS.sleep`` operation) after registering the waiter."""
    deadline = time.monotonic() + timeout
    while not any(
        step["function_name"] == "DBOS.sleep" for step in DBOS.list_workflow_steps(workflow_id)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"DBOS workflow {workflow_id} never waited in recv")
        time.sleep(0.005)


def message_sample(settle: float, timeout: float) -> dict[str, float]:
    handle = DBOS.start_workflow(recv_then_step)
    wait_in_recv(handle.workflow_id, timeout)
    time.sleep(settle)
    sent_at = time.time()
    DBOS.send(handle.workflow_id, "ping", MESSAGE_TOPIC)
    returned_at = time.time()
    time.sleep(settle)  # get_result polls: not while the wake is measured
    result = handle.get_result()
    if result["message"] != "ping":
        raise RuntimeError(f"DBOS workflow {handle.workflow_id} received {result!r}")
    return {
        "step_ms": (result["started_at"] - sent_at) * 1000,
        "send_call_ms": (returned_at - sent_at) * 1000,
    }


def event_sample(settle: float, timeout: float) -> dict[str, float]:
    handle = DBOS.start_workflow(recv_then_set_event)
    wait_in_recv(handle.workflow_id, timeout)
    got: dict[str, Any] = {}

    def wait_for_event() -> None:
        got["value"] = DBOS.get_event(handle.workflow_id, EVENT_KEY, timeout_seconds=timeout)
        got["at"] = time.time()

    waiter = threading.Thread(target=wait_for_event)
    waiter.start()
    time.sleep(settle)  # the waiter has subscribed and found nothing yet
    sent_at = time.time()
    DBOS.send(handle.workflow_id, "go", EVENT_TOPIC)
    waiter.join(timeout)
    if got.get("value") is None:
        raise RuntimeError(f"DBOS get_event on {handle.workflow_id} returned nothing")
    result = handle.get_result()
    if result["message"] != "go":
        raise RuntimeError(f"DBOS workflow {handle.workflow_id} received {result!r}")
    return {
        "set_to_get_ms": (got["at"] - got["value"]) * 1000,
        "send_to_get_ms": (got["at"] - sent_at) * 1000,
    }


def measure_messaging(samples: int, warmup: int, settle: float, timeout: float) -> dict[str, Any]:
    """Message and event samples alternate (the order swapped every other pair)."""
    variants = {"message": message_sample, "event": event_sample}
    for _ in range(warmup):
        for variant in variants.values():
            variant(settle, timeout)
    measured: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for index in range(samples):
        names = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in names:
            for figure, value in variants[name](settle, timeout).items():
                measured[name].setdefault(figure, []).append(value)
    return measured


def measure_overhead(dbos: DBOS, args: argparse.Namespace) -> dict[str, Any]:
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
    return {"times_us": times, "counts_per_workflow": counts, "rates": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", choices=("overhead", "messaging"), default="overhead")
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--workflows", type=int, default=10)
    parser.add_argument("--inserts", type=int, default=200)
    parser.add_argument("--plain-loops", type=int, default=20_000)
    parser.add_argument("--counted-workflows", type=int, default=20)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--samples", type=int, default=50, help="messaging: per figure")
    parser.add_argument("--warmup", type=int, default=5, help="messaging: unmeasured samples")
    parser.add_argument("--settle", type=float, default=0.05, help="messaging: seconds")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    config: DBOSConfig = {
        "name": "celery_durable_bench_dbos",
        "system_database_url": args.database_url,
        "log_level": "WARNING",
    }
    dbos = DBOS(config=config)
    DBOS.launch()
    try:
        if args.mode == "messaging":
            measured = measure_messaging(args.samples, args.warmup, args.settle, args.timeout)
        else:
            measured = measure_overhead(dbos, args)
    finally:
        DBOS.destroy()

    print(json.dumps({"version": version("dbos"), **measured}))


if __name__ == "__main__":
    main()
