"""Counting what the library sends to PostgreSQL while some work runs.

Two counts, because they answer different questions:

- client side, SQLAlchemy events on the system store's engine: statements
  (``before_cursor_execute``), ``commit``/``rollback`` events and pool checkouts;
- server side, ``pg_stat_database.xact_commit + xact_rollback`` of the benchmark's
  database: the transactions PostgreSQL actually ran. The system store runs in
  AUTOCOMMIT, where every statement is its own transaction and SQLAlchemy's
  ``commit`` event never fires, so only the server can tell how many transactions
  there were. A backend reports its counts when it exits, so the store's connections
  are closed before and after the work (see :func:`bench.db.settled_transactions`).
  Each connection the work opens also costs its backend's start-up transaction(s);
  differences between two counted runs (a "marginal" figure) cancel them, and
  :attr:`Counts.work_transactions` subtracts one per connection opened (what a backend's
  start-up counts on PostgreSQL 15).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from bench.db import settled_transactions
from celery_durable import DBOS


@dataclass(frozen=True, kw_only=True)
class Counts:
    statements: int
    commit_events: int
    rollback_events: int
    checkouts: int
    connections: int  # opened by the work
    server_transactions: int
    statement_log: list[str]

    @property
    def work_transactions(self) -> int:
        """Server transactions less one start-up transaction per connection opened."""
        return self.server_transactions - self.connections


def stores() -> Any:
    """What holds the configured DBOS's ``store`` and ``application_store``."""
    return DBOS._service().runtime.process


def system_engines() -> list[Engine]:
    """The system store's SQLAlchemy engine in this process (executions' statements go
    to the driver directly: the store reports them to its listeners)."""
    return [stores().store.connections.engine]


def _close_connections() -> None:
    # Closes the pooled connections but keeps the engines, whose dialects are
    # initialized (a new engine would send its start-up queries, uncounted by the events).
    for engine in system_engines():
        engine.dispose()
    stores().store.connections.fence.close()  # both reopened by the next execution
    stores().store.connections.statements.close()
    stores().application_store.dispose()


def count(database_url: str, work: Callable[[], object]) -> Counts:
    """Runs ``work`` (which must use only the configured DBOS) and counts its SQL.

    Every other connection to the database must be closed.
    """
    _close_connections()
    before = settled_transactions(database_url)
    engines = system_engines()
    statements: list[str] = []
    tallies = {"commit": 0, "rollback": 0, "checkout": 0, "connect": 0}

    def record(statement: str) -> None:
        statements.append(" ".join(statement.split()))

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        record(statement)

    def tally(name: str) -> Callable[..., None]:
        def listener(*args: Any) -> None:
            tallies[name] += 1

        return listener

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", on_statement),
        ("commit", tally("commit")),
        ("rollback", tally("rollback")),
        ("checkout", tally("checkout")),
        ("connect", tally("connect")),
    ]
    for engine in engines:
        for name, listener in listeners:
            event.listen(engine, name, listener)
    # The per-step checkpoint goes to the driver directly: the store reports it.
    store = stores().store
    store.connections.statement_listeners.append(record)
    try:
        work()
    finally:
        store.connections.statement_listeners.remove(record)
        for engine in engines:
            for name, listener in listeners:
                event.remove(engine, name, listener)
    _close_connections()
    after = settled_transactions(database_url)
    return Counts(
        statements=len(statements),
        commit_events=tallies["commit"],
        rollback_events=tallies["rollback"],
        checkouts=tallies["checkout"],
        connections=tallies["connect"],
        server_transactions=after - before,
        statement_log=statements,
    )


def statement_kind(statement: str) -> str:
    """A short name for one of the library's statements (for notes, JSON and
    ``tests/integration/test_budget.py``); any other statement is returned whole."""
    if "call_workflow(" in statement:
        return "insert + claim"
    if "claim_workflow(" in statement:
        return "claim"
    if "INSERT INTO celery_durable.workflow_status" in statement:
        return "insert workflow"
    if statement.startswith("INSERT INTO celery_durable.operation_outputs") or (
        statement.startswith("WITH owner AS")
        and "INSERT INTO celery_durable.operation_outputs" in statement
    ):
        return "insert step"
    if statement.startswith("WITH batch AS") and (
        "INSERT INTO celery_durable.operation_outputs" in statement
    ):
        return "insert steps (group commit)"
    if statement.startswith("UPDATE celery_durable.workflow_status SET status"):
        return "complete"
    if statement.startswith("SELECT name, status, output, error"):
        return "read outcome"
    return statement


def summary(statements: list[str]) -> str:
    """The kinds of ``statements`` in order, runs counted: ``claim, 10 x insert step``."""
    runs: list[tuple[str, int]] = []
    for kind in map(statement_kind, statements):
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + 1)
        else:
            runs.append((kind, 1))
    return ", ".join(kind if times == 1 else f"{times} x {kind}" for kind, times in runs)
