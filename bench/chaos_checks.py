"""The chaos run's record and its invariants (``bench.chaos`` drives, this judges).

The record: the faults injected (``Fault``), and what the workers' step bodies wrote to
``chaos_effects`` and ``chaos_intervals`` (``TABLES``; ``bench.chaos_app`` writes them)
beside the library's own tables. ``verify`` turns them into one ``Check`` per invariant
(see ``bench.chaos`` for the list) and the figures of the report.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from bench.gevent_overlap import most_at_once

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
    # The workers' recovery grace: a delivery later than this is published again. Shorter
    # recovers a killed worker's prefetched messages sooner; shorter than the queue's
    # backlog, it publishes every waiting workflow again at every sweep.
    grace_seconds: float = 30.0
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


def retrying(action: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    """``action()``, retried while a server restarts (any error, up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} kept failing for {timeout:.0f}s: {error!r}") from error
            time.sleep(0.3)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    def run() -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()

    return retrying(run, "a query")


def dump(url: str, logs: Path) -> None:
    """What the invariants were computed from, as CSV beside the logs, for a look."""
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


# -- the invariants ------------------------------------------------------------------------


def verify(settings: Settings, report: Report, url: str) -> None:
    checks = report.checks
    faults = report.faults
    n = settings.workflows
    rows = query(
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

    terms = [fault for fault in faults if fault.kind == "term"]
    hung = [fault for fault in terms if fault.detail != "exited"]
    checks.append(
        Check(
            "a SIGTERMed worker exits (its warm shutdown ends within 60 s)",
            not hung,
            f"{len(terms) - len(hung)}/{len(terms)} exited"
            + (f"; SIGKILLed: {', '.join(str(f.node) for f in hung)}" if hung else ""),
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

    messages = query(
        url,
        "SELECT destination_uuid, count(*), count(consumed_by_function_id) "
        "FROM celery_durable.notifications GROUP BY destination_uuid",
    )
    stored = {row[0]: (int(row[1]), int(row[2])) for row in messages}
    # Two stored (of four sends) and both consumed; the workflow's three recv returned
    # each once, in order, and then nothing.
    bad_messages = [wid for wid in parents if stored.get(wid) != (2, 2)]
    for wid, row in parents.items():
        index = int(wid.rsplit("-", 1)[1])
        received = json.loads(row[3])[-1] if row[2] == "SUCCESS" else None
        if received != expected(index, settings.steps)[-1]:
            bad_messages.append(f"{wid}: {received}")
    checks.append(
        Check(
            "each message received exactly once",
            not bad_messages,
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

    intervals = query(url, "SELECT started, ended FROM chaos_intervals")
    most = most_at_once([(round(start * 1e6), round(end * 1e6)) for start, end in intervals])
    holds = query(url, "SELECT count(*) FROM chaos_effects WHERE step = 'hold'")[0][0]
    checks.append(
        Check(
            "the queue limit held",
            most <= settings.limit,
            f"at most {most} of {settings.limit} at once over {len(intervals)} completed "
            f"holds ({holds - len(intervals)} interrupted)",
        )
    )

    slept = query(
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


def _cause(faults: list[Fault], node: str, after: float, before: float) -> Fault | None:
    """The fault that could have interrupted an execution on ``node`` that started at
    ``after`` (or whose outcome was recorded then) and made one start at ``before``: the
    latest, preferring any to a SIGTERM (whose warm shutdown lets running tasks finish)."""
    causes = [
        fault
        for fault in faults
        if (fault.node is None or fault.node == node)
        and fault.end >= after
        and fault.start <= before
    ]
    return max(causes, key=lambda fault: (fault.kind != "term", fault.start), default=None)


def _check_executions(settings: Settings, report: Report, url: str) -> None:
    effects = query(
        url,
        "SELECT workflow_id, function_id, attempt, step, node, started FROM chaos_effects "
        "ORDER BY workflow_id, function_id, started",
    )
    outcomes = {
        (row[0], row[1]): row[2]
        for row in query(
            url,
            "SELECT workflow_uuid, function_id, completed_at_epoch_ms "
            "FROM celery_durable.operation_outputs",
        )
    }
    by_step: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    for row in effects:
        by_step[(row[0], row[1])].append(row)
    extra = 0
    causes: dict[str, int] = defaultdict(int)
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
            cause = _cause(report.faults, previous[4], previous[5], execution[5])
            if cause is None:
                unexplained.append(f"{workflow_id}#{function_id} ({execution[3]})")
            else:
                causes[cause.kind] += 1
        for execution in executions:
            # Both in ms as the library records them (truncated): a body that started
            # in the millisecond its outcome was recorded did not start after it.
            if completed is not None and int(execution[5] * 1000) > completed:
                after_outcome += 1
                if _cause(report.faults, execution[4], completed / 1000, execution[5]) is None:
                    after_unexplained.append(f"{workflow_id}#{function_id} ({execution[3]})")
    slots = settings.concurrency * len(NODES)
    bound = sum(settings.concurrency if f.node else slots for f in report.faults)
    report.figures.update(
        extra=extra, bound=bound, executions=len(effects), extra_after=dict(causes)
    )
    after = ", ".join(f"{kind} {n}" for kind, n in sorted(causes.items()))
    report.checks.append(
        Check(
            "no step ran again after its outcome was recorded",
            not after_unexplained,
            f"{after_outcome} executions after the outcome"
            + (", each after a fault that interrupted its recording" if after_outcome else "")
            if not after_unexplained
            else f"{len(after_unexplained)} without a fault between: {after_unexplained[:5]}",
        )
    )
    report.checks.append(
        Check(
            "extra executions only where a fault interrupted the step",
            not unexplained and extra <= bound,
            f"{extra} extra of {len(effects)} step executions"
            + (f" (after: {after})" if after else "")
            + f", bound {bound} ({len(report.faults)} faults x the slots each can reach)"
            + (
                f"; {len(unexplained)} with no fault between: {unexplained[:5]}"
                if unexplained
                else ""
            ),
        )
    )
