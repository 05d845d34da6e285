"""Chaos: workflows using every durable feature, under mixed faults, invariants checked.

    python -m bench.chaos --workflows 150 --broker redis --faults kill,term,postgres,broker

Starts private servers (``bench.servers``: a PostgreSQL cluster, and a Redis server or a
RabbitMQ node, on free ports; the machine's shared servers are never touched), a
prefork worker and a threads worker (``bench.chaos_app``, each in its own process
group), enqueues the workflows, sends each its two messages twice (one idempotency key
each), and every 3-6 s (``--fault-every``) injects a fault:

- ``kill``: SIGKILL a worker's process group (then start a new one);
- ``term``: SIGTERM a worker (Celery's warm shutdown; then start a new one);
- ``postgres``: restart PostgreSQL (a fast shutdown, as ``pg_ctlcluster restart``);
- ``broker``: restart Redis or RabbitMQ.

When every workflow has finished (or ``--timeout``), it checks the invariants, prints
one line for each and a verdict line, and exits non-zero if one is violated:

- every workflow SUCCESS with its expected result;
- a SIGTERMed worker exits by its warm shutdown (within 60 s);
- workers exit only when the run stops them (none dies of a fault);
- each message received exactly once (two stored per workflow, the third recv empty);
- each child ran once (one per parent, for each kind);
- no step body ran after its outcome was recorded, unless a fault fell in between;
- every extra execution of a step follows a fault that could have interrupted it (one
  on its worker, or a server restart), and the count is within the bound: each fault
  can interrupt at most the steps in flight it reaches (a worker: its concurrency; a
  server: every slot);
- the limited queue never ran more than its concurrency at once;
- every durable sleep lasted at least its duration.

The former options still work: ``--kill-every S`` is ``--faults kill --fault-every S``,
``--steps`` the plain steps per workflow, ``--concurrency`` each worker's slots.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.chaos_checks import (
    FAULTS,
    NODES,
    TABLES,
    Fault,
    Report,
    Settings,
    dump,
    message,
    query,
    retrying,
    verify,
)
from bench.db import create_tables
from bench.servers import PrivatePostgres, PrivateRabbitMQ, PrivateRedis, Servers

ROOT = Path(__file__).resolve().parent.parent


# -- workers -------------------------------------------------------------------------------


class Workers:
    """The prefork and the threads worker, each restarted after a fault."""

    def __init__(self, env: dict[str, str], logs: Path, concurrency: int) -> None:
        self.env = env
        self.logs = logs
        self.concurrency = concurrency
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.generation = 0
        for node in NODES:
            self.start(node)

    def start(self, node: str) -> None:
        self.generation += 1
        with (self.logs / f"{node}.log").open("ab") as log:
            self.processes[node] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "bench.chaos_app",
                    "worker",
                    "--loglevel=INFO",
                    f"--pool={node}",
                    f"--concurrency={self.concurrency}",
                    "--queues=chaos,chaos-limited",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    f"--hostname={node}-{self.generation}@%h",
                ],
                env={**self.env, "CD_CHAOS_NODE": node},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, node: str) -> None:
        process = self.processes[node]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def term(self, node: str) -> bool:
        """SIGTERM (warm shutdown); SIGKILL after 60 s. Returns whether it exited alone.

        A worker still there after 60 s first gets a SIGUSR1: Celery writes the stack of
        each of its threads to its log (what the shutdown waits for)."""
        process = self.processes[node]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
            alone = True
        except subprocess.TimeoutExpired:
            alone = False
            process.send_signal(signal.SIGUSR1)
            time.sleep(2)
        self.kill(node)  # the pool's children too, if any is left
        return alone

    def died(self) -> list[str]:
        """The workers that exited on their own (each is started again)."""
        return [node for node, process in self.processes.items() if process.poll() is not None]

    def stop(self) -> None:
        for node in self.processes:
            self.kill(node)


# -- the run -------------------------------------------------------------------------------


@contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: the private servers are stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(settings: Settings) -> Report:
    """Runs the scenario; returns the report (``report.passed``)."""
    report = Report(settings)
    rng = random.Random(settings.seed)
    logs = Path(tempfile.mkdtemp(prefix=f"chaos-{settings.broker}-"))
    report.logs = logs
    started = time.monotonic()
    with _terminated_as_exit(), Servers() as servers:
        postgres = servers.postgres()
        broker: PrivateRedis | PrivateRabbitMQ = (
            servers.redis() if settings.broker == "redis" else servers.rabbitmq()
        )
        broker_url = broker.url()
        url = postgres.url("chaos")
        with psycopg.connect(postgres.url(), autocommit=True) as connection:
            connection.execute('CREATE DATABASE "chaos"')
        create_tables(url)
        with psycopg.connect(url, autocommit=True) as connection:
            for table in TABLES:
                connection.execute(table)
        env = {
            **os.environ,
            "CD_CHAOS_DATABASE_URL": url,
            "CD_CHAOS_BROKER_URL": broker_url,
            "CD_CHAOS_LIMIT": str(settings.limit),
            "CD_CHAOS_SLEEP_SECONDS": str(settings.sleep_seconds),
            "CD_CHAOS_HOLD_SECONDS": str(settings.hold_seconds),
            "CD_CHAOS_STEP_SECONDS": str(settings.step_seconds),
            "CD_CHAOS_GRACE_SECONDS": str(settings.grace_seconds),
        }
        from celery_durable import DBOSClient

        client = DBOSClient(url, broker_url)
        workers = Workers(env, logs, settings.concurrency)
        try:
            _drive(settings, report, rng, client, workers, postgres, broker, url)
        finally:
            workers.stop()
            client.destroy()
        report.seconds = time.monotonic() - started
        verify(settings, report, url)
        (logs / "faults.json").write_text(json.dumps([vars(f) for f in report.faults], indent=1))
        dump(url, logs)
    return report


def _drive(
    settings: Settings,
    report: Report,
    rng: random.Random,
    client: Any,
    workers: Workers,
    postgres: PrivatePostgres,
    broker: PrivateRedis | PrivateRabbitMQ,
    url: str,
) -> None:
    ids = [f"chaos-{index}" for index in range(settings.workflows)]
    # Two messages per workflow, each sent twice with one key, in a shuffled order (a
    # message's copies and the two messages of a workflow keep their order).
    sends: list[tuple[int, int]] = []
    for index in range(settings.workflows):
        sends += [(index, 0), (index, 0), (index, 1), (index, 1)]
    sends.sort(key=lambda send: (rng.random() + send[1], send[1]))
    pending_enqueues = list(range(settings.workflows))
    began = time.monotonic()
    deadline = began + settings.timeout
    next_fault = time.monotonic() + rng.uniform(*settings.fault_every)
    last_check = 0.0
    last_look = time.time()
    kinds: list[str] = []
    while time.monotonic() < deadline:
        # Work a little at a time, so faults land while workflows start and messages
        # arrive as well as while they run.
        for index in pending_enqueues[:10]:
            retrying(
                lambda index=index: client.enqueue(
                    {
                        "workflow_name": "chaos",
                        "queue_name": "chaos",
                        "workflow_id": ids[index],
                        "allow_unregistered": True,
                    },
                    index,
                    settings.steps,
                ),
                "an enqueue",
            )
        del pending_enqueues[:10]
        if not pending_enqueues:
            for index, number in sends[:4]:
                retrying(
                    lambda index=index, number=number: client.send(
                        ids[index],
                        message(index, number),
                        "pay",
                        idempotency_key=f"{ids[index]}:{number}",
                    ),
                    "a send",
                )
            del sends[:4]
        for node in workers.died():
            # It died since the previous look.
            report.faults.append(Fault("died", node, last_look, time.time()))
            print(f"[{time.monotonic() - began:5.0f} s] the {node} worker died", file=sys.stderr)
            workers.kill(node)
            workers.start(node)
        last_look = time.time()
        if time.monotonic() >= next_fault:
            if not kinds:
                # Every kind once per round, in a shuffled order.
                kinds = rng.sample(settings.faults, len(settings.faults))
            fault = _inject(kinds.pop(), rng, workers, postgres, broker)
            report.faults.append(fault)
            next_fault = time.monotonic() + rng.uniform(*settings.fault_every)
            finished = _finished(url)
            print(
                f"[{time.monotonic() - began:5.0f} s] {fault.kind} {fault.node or ''} "
                f"{fault.detail} ({fault.end - fault.start:.1f} s); "
                f"{finished}/{settings.workflows} finished, {len(sends)} sends left",
                file=sys.stderr,
                flush=True,
            )
        if time.monotonic() - last_check > 1.0 and not sends:
            last_check = time.monotonic()
            finished = _finished(url)
            injected = sum(fault.kind != "died" for fault in report.faults)
            if finished == settings.workflows and injected >= settings.min_faults:
                return
        time.sleep(0.1)


def _finished(url: str) -> int:
    rows = query(
        url,
        "SELECT count(*) FROM celery_durable.workflow_status "
        "WHERE name = 'chaos' AND status NOT IN ('PENDING', 'ENQUEUED')",
    )
    return int(rows[0][0])


def _inject(
    kind: str,
    rng: random.Random,
    workers: Workers,
    postgres: PrivatePostgres,
    broker: PrivateRedis | PrivateRabbitMQ,
) -> Fault:
    start = time.time()
    node: str | None = None
    detail = ""
    if kind == "kill":
        node = rng.choice(NODES)
        workers.kill(node)
    elif kind == "term":
        node = rng.choice(NODES)
        detail = "exited" if workers.term(node) else "SIGKILLed after 60 s"
    elif kind == "postgres":
        postgres.restart()
    elif kind == "broker":
        broker.restart()
    else:
        raise ValueError(f"unknown fault {kind!r}")
    end = time.time()
    if node is not None:
        workers.start(node)
    return Fault(kind, node, start, end, detail)


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=150)
    parser.add_argument("--steps", type=int, default=2, help="plain steps per workflow")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, of {','.join(FAULTS)} (default: all)",
    )
    parser.add_argument(
        "--fault-every", default="3-6", help="seconds between faults: S or LOW-HIGH (3-6)"
    )
    parser.add_argument("--kill-every", type=float, help="as --faults kill --fault-every S")
    parser.add_argument("--concurrency", type=int, default=2, help="slots per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--grace", type=float, default=30.0, help="the workers' recovery grace (s), 30"
    )
    parser.add_argument(
        "--min-faults", type=int, default=0, help="go on until this many faults were injected"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    faults = tuple(fault for fault in args.faults.split(",") if fault)
    unknown = set(faults) - set(FAULTS)
    if unknown or not faults:
        parser.error(f"--faults: unknown {sorted(unknown)}; choose from {','.join(FAULTS)}")
    every = _range(args.fault_every)
    if args.kill_every is not None:
        faults, every = ("kill",), (args.kill_every, args.kill_every)
    settings = Settings(
        workflows=args.workflows,
        steps=args.steps,
        broker=args.broker,
        faults=faults,
        fault_every=every,
        concurrency=args.concurrency,
        seed=args.seed,
        timeout=args.timeout,
        min_faults=args.min_faults,
        grace_seconds=args.grace,
    )
    report = run(settings)
    for line in report.lines():
        print(line)
    print(f"(worker logs: {report.logs})", file=sys.stderr)
    if not report.passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
