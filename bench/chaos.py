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
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from bench.db import create_tables
from bench.gevent_overlap import most_at_once
from bench.servers import PrivatePostgres, PrivateRabbitMQ, PrivateRedis, Servers

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ("kill", "term", "postgres", "broker")
NODES = ("prefork", "threads")
TABLES = (
    "CREATE TABLE chaos_effects (workflow_id text NOT NULL, function_id integer, "
    "attempt integer, step text NOT NULL, node text NOT NULL, pid integer NOT NULL, "
    "started double precision NOT NULL)",
    "CREATE TABLE chaos_intervals (workflow_id text NOT NULL, node text NOT NULL, "
    "started double precision NOT NULL, ended double precision NOT NULL)",
)
T = TypeVar("T")


def expected(index: int, steps: int) -> list[Any]:
    """What ``bench.chaos_app.chaos(index, steps)`` returns."""
    return [
        *(f"s{number}" for number in range(steps)),
        "ok",
        index * 10,
        index * 10 + 1,
        index,
        [message(index, 0), message(index, 1), None],
    ]


def message(index: int, number: int) -> str:
    return f"m{number}-{index}"


@dataclass
class Settings:
    workflows: int = 150
    steps: int = 2
    broker: str = "redis"
    faults: tuple[str, ...] = FAULTS
    fault_every: tuple[float, float] = (3.0, 6.0)
    concurrency: int = 2
    seed: int = 0
    timeout: float = 600.0
    limit: int = 2
    sleep_seconds: float = 2.0
    hold_seconds: float = 0.2
    step_seconds: float = 0.05
    # The run goes on (faults against idle workers) until this many were injected.
    min_faults: int = 0


@dataclass
class Fault:
    kind: str  # kill, term, postgres, broker; died: a worker exited on its own
    node: str | None  # the worker it hit; None: every worker
    start: float
    end: float
    # term: whether the worker's warm shutdown ended it (or a SIGKILL after 60 s had to).
    detail: str = ""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    settings: Settings
    faults: list[Fault] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    logs: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for fault in self.faults:
            counts[fault.kind] += 1
        return dict(counts)

    def lines(self) -> list[str]:
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.fault_counts().items()))
        settings = self.settings
        lines = [
            f"{settings.workflows} workflows on {settings.broker}, workers prefork and threads "
            f"x{settings.concurrency}, faults every {settings.fault_every[0]:g}-"
            f"{settings.fault_every[1]:g} s (seed {settings.seed}): {counts or 'none'}"
        ]
        forced = sum(fault.detail.startswith("SIGKILLed") for fault in self.faults)
        if forced:
            lines.append(f"  ({forced} SIGTERMed workers did not exit within 60 s: SIGKILLed)")
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        failed = [check.name for check in self.checks if not check.ok]
        verdict = "PASS" if self.passed else f"FAIL ({len(failed)} violated: {', '.join(failed)})"
        lines.append(
            f"chaos verdict: {verdict} - {len(self.faults)} faults in {self.seconds:.0f} s, "
            f"extra executions {self.figures.get('extra', '?')} "
            f"(bound {self.figures.get('bound', '?')})"
        )
        return lines


# -- the database, through restarts ------------------------------------------------------


def _retrying(action: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    """``action()``, retried while a server restarts (any error, up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} kept failing for {timeout:.0f}s: {error!r}") from error
            time.sleep(0.3)


def _query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    def run() -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()

    return _retrying(run, "a query")


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
        """SIGTERM (warm shutdown); SIGKILL after 60 s. Returns whether it exited alone."""
        process = self.processes[node]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
            alone = True
        except subprocess.TimeoutExpired:
            alone = False
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
        _verify(settings, report, url)
        (logs / "faults.json").write_text(json.dumps([vars(f) for f in report.faults], indent=1))
        if not report.passed:
            _dump(url, logs)
    return report


def _dump(url: str, logs: Path) -> None:
    """What a failed run's invariants were computed from, for a look afterwards."""
    tables = {
        "effects": "chaos_effects",
        "intervals": "chaos_intervals",
        "steps": "celery_durable.operation_outputs",
        "workflows": "celery_durable.workflow_status",
    }
    with psycopg.connect(url, autocommit=True) as connection:
        for name, table in tables.items():
            with (
                (logs / f"{name}.csv").open("wb") as out,
                connection.cursor().copy(f"COPY {table} TO STDOUT WITH CSV HEADER") as copy,
            ):
                for data in copy:
                    out.write(data)


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
            _retrying(
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
                _retrying(
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
    rows = _query(
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


# -- the invariants ------------------------------------------------------------------------


def _verify(settings: Settings, report: Report, url: str) -> None:
    checks = report.checks
    faults = report.faults
    n = settings.workflows
    rows = _query(
        url,
        "SELECT workflow_uuid, name, status, output, parent_workflow_id "
        "FROM celery_durable.workflow_status",
    )
    parents = {row[0]: row for row in rows if row[1] == "chaos"}
    wrong = []
    for index in range(n):
        row = parents.get(f"chaos-{index}")
        if row is None or row[2] != "SUCCESS":
            wrong.append(f"chaos-{index}: {row[2] if row else 'missing'}")
        elif json.loads(row[3]) != expected(index, settings.steps):
            wrong.append(f"chaos-{index}: {row[3]}")
    checks.append(
        Check(
            "every workflow SUCCESS with its expected result",
            not wrong,
            f"{n - len(wrong)}/{n}" + (f"; first wrong: {wrong[:3]}" if wrong else ""),
        )
    )

    died = [fault for fault in faults if fault.kind == "died"]
    checks.append(
        Check(
            "workers exit only when stopped",
            not died,
            f"{len(died)} unexpected exits"
            + (f" ({', '.join(sorted({str(f.node) for f in died}))})" if died else ""),
        )
    )

    messages = _query(
        url,
        "SELECT destination_uuid, count(*), count(consumed_by_function_id) "
        "FROM celery_durable.notifications GROUP BY destination_uuid",
    )
    stored = {row[0]: (int(row[1]), int(row[2])) for row in messages}
    bad_messages = [wid for wid in parents if stored.get(wid) != (2, 2)]
    took = _query(
        url, "SELECT workflow_id, count(*) FROM chaos_effects WHERE step = 'took' GROUP BY 1"
    )
    checks.append(
        Check(
            "each message received exactly once",
            not bad_messages and not wrong,
            f"{sum(s for s, _ in stored.values())} stored of {4 * n} sent (2 copies each), "
            f"{sum(c for _, c in stored.values())} received"
            + (f"; wrong: {bad_messages[:3]}" if bad_messages else ""),
        )
    )

    children: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if row[1] in ("chaos_child", "chaos_limited"):
            children[row[4] or "none"][row[1]] += 1
    bad_children = [
        wid for wid in parents if children[wid] != {"chaos_child": 1, "chaos_limited": 1}
    ]
    orphans = set(children) - set(parents)
    child_rows = [row for row in rows if row[1] in ("chaos_child", "chaos_limited")]
    checks.append(
        Check(
            "each child ran once",
            not bad_children and not orphans and all(r[2] == "SUCCESS" for r in child_rows),
            f"{len(child_rows)} children for {len(parents)} parents (expected {2 * n})",
        )
    )

    _check_executions(settings, report, url)

    intervals = _query(url, "SELECT started, ended FROM chaos_intervals")
    most = most_at_once([(round(start * 1e6), round(end * 1e6)) for start, end in intervals])
    holds = _query(url, "SELECT count(*) FROM chaos_effects WHERE step = 'hold'")[0][0]
    checks.append(
        Check(
            "the queue limit held",
            most <= settings.limit,
            f"at most {most} of {settings.limit} at once over {len(intervals)} completed "
            f"holds ({holds - len(intervals)} interrupted)",
        )
    )

    slept = _query(
        url,
        "SELECT value FROM celery_durable.workflow_events WHERE key = 'slept'",
    )
    durations = [float(json.loads(row[0])) for row in slept]
    short = [d for d in durations if d < settings.sleep_seconds]
    checks.append(
        Check(
            "every sleep lasted",
            len(durations) == n and not short,
            f"{len(durations)} sleeps of {settings.sleep_seconds:g} s, shortest "
            f"{min(durations, default=0):.2f} s, longest {max(durations, default=0):.2f} s",
        )
    )
    report.figures["took"] = sum(int(row[1]) for row in took)


def _attributable(fault: Fault, node: str, after: float, before: float) -> bool:
    """Whether ``fault`` could have interrupted an execution on ``node`` that started at
    ``after`` (or whose outcome was recorded then) and made one start at ``before``."""
    return (
        (fault.node is None or fault.node == node)
        and fault.end >= after
        and (fault.start <= before)
    )


def _check_executions(settings: Settings, report: Report, url: str) -> None:
    effects = _query(
        url,
        "SELECT workflow_id, function_id, attempt, step, node, started FROM chaos_effects "
        "ORDER BY workflow_id, function_id, started",
    )
    outcomes = {
        (row[0], row[1]): row[2]
        for row in _query(
            url,
            "SELECT workflow_uuid, function_id, completed_at_epoch_ms "
            "FROM celery_durable.operation_outputs",
        )
    }
    by_step: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    for row in effects:
        by_step[(row[0], row[1])].append(row)
    extra = 0
    unexplained: list[str] = []
    after_outcome = 0
    after_unexplained: list[str] = []
    for (workflow_id, function_id), executions in by_step.items():
        completed = outcomes.get((workflow_id, function_id))
        for previous, execution in itertools.pairwise(executions):
            # The flaky step's planned retry: its failed first attempt was recorded.
            if execution[3] == "flaky" and previous[2] == 0 and execution[2] > previous[2]:
                continue
            extra += 1
            if not any(
                _attributable(f, previous[4], previous[5], execution[5]) for f in report.faults
            ):
                unexplained.append(f"{workflow_id}#{function_id} ({execution[3]})")
        for execution in executions:
            # Both in ms as the library records them (truncated): a body that started
            # in the millisecond its outcome was recorded did not start after it.
            if completed is not None and int(execution[5] * 1000) > completed:
                after_outcome += 1
                if not any(
                    _attributable(f, execution[4], completed / 1000, execution[5])
                    for f in report.faults
                ):
                    after_unexplained.append(f"{workflow_id}#{function_id} ({execution[3]})")
    slots = settings.concurrency * len(NODES)
    bound = sum(settings.concurrency if f.node else slots for f in report.faults)
    report.figures.update(extra=extra, bound=bound, executions=len(effects))
    report.checks.append(
        Check(
            "no step ran again after its outcome was recorded",
            not after_unexplained,
            f"{after_outcome} executions after the outcome, all after a fault that "
            "interrupted its recording"
            if not after_unexplained
            else f"{len(after_unexplained)} without a fault between: {after_unexplained[:5]}",
        )
    )
    report.checks.append(
        Check(
            "extra executions only where a fault interrupted the step",
            not unexplained and extra <= bound,
            f"{extra} extra of {len(effects)} step executions, bound {bound} "
            f"({len(report.faults)} faults x the slots each can reach)"
            + (
                f"; {len(unexplained)} with no fault between: {unexplained[:5]}"
                if unexplained
                else ""
            ),
        )
    )


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
    )
    report = run(settings)
    for line in report.lines():
        print(line)
    print(f"(worker logs: {report.logs})", file=sys.stderr)
    if not report.passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
