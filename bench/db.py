"""Benchmark databases, the server's durability settings, and its transaction counts."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.settings import admin_url
from celery_durable.store import SystemStore


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError(f"no database in {url!r}")
    return name


def recreate_database(url: str) -> None:
    """Drops and creates the database of ``url`` (each benchmark starts empty)."""
    name = database_name(url)
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def create_tables(url: str) -> None:
    """celery_durable's tables, as ``celery-durable migrate`` creates them (reading
    never does: the workers' tables must exist before a producer writes to them)."""
    store = SystemStore(url, pool_size=1)
    try:
        store.schema.migrate()
    finally:
        store.dispose()


def drop_database(url: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


def server_settings() -> dict[str, Any]:
    """The server's version and the settings that decide what a commit costs."""
    names = ("server_version", "synchronous_commit", "fsync", "wal_sync_method")
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        return {
            name: connection.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in names
        }


def settled_transactions(url: str, *, timeout: float = 10.0) -> int:
    """Transactions the server has counted in this database (commits and rollbacks).

    Read from ``pg_stat_database`` through the ``postgres`` database, so the reading
    does not count itself. A backend reports its counts when it has been idle for a
    while, or when it exits: call this once the database's connections are closed. It
    waits until no backend is left and the count stops moving.
    """
    name = database_name(url)
    deadline = time.monotonic() + timeout
    previous: int | None = None
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        while True:
            connection.execute("SELECT pg_stat_clear_snapshot()")
            row = connection.execute(
                "SELECT numbackends, xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = %s",
                (name,),
            ).fetchone()
            assert row is not None, f"no statistics for database {name}"
            backends, transactions = int(row[0]), int(row[1])
            if backends == 0 and transactions == previous:
                return transactions
            previous = transactions if backends == 0 else None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"database {name} still has {backends} connection(s) after {timeout}s"
                )
            time.sleep(0.15)
