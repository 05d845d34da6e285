"""Fixtures: a real PostgreSQL database, a real Redis broker, a real Celery worker.

A missing service fails the run; nothing is skipped. Override the defaults with
CELERY_DURABLE_TEST_DATABASE_URL and CELERY_DURABLE_TEST_BROKER_URL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import event
from sqlalchemy.engine import make_url

from celery_durable import DBOS
from celery_durable.store import SystemStore

DATABASE_URL = os.environ.get(
    "CELERY_DURABLE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/celery_durable_test"
)
BROKER_URL = os.environ.get("CELERY_DURABLE_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
TEST_QUEUE = "celery_durable_tests"


def admin_url(url: str) -> str:
    """The same server's ``postgres`` database, as a libpq URL."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def recreate_database(url: str) -> None:
    """Drops and creates the database named in ``url`` (a clean slate per session)."""
    name = make_url(url).database
    assert name
    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def migrate_database(url: str) -> str:
    """Creates or upgrades celery_durable's tables in the database at ``url``."""
    store = SystemStore(url, pool_size=1)
    try:
        store.schema.migrate()
    finally:
        store.dispose()
    return url


def migrated_database(url: str) -> str:
    """A fresh database at ``url`` with celery_durable's tables (for workers started
    as subprocesses, which do not migrate on their own first)."""
    recreate_database(url)
    return migrate_database(url)


@pytest.fixture(scope="session")
def celery_app() -> Celery:
    app = Celery("celery_durable_tests", broker=BROKER_URL)
    app.conf.update(
        task_default_queue=TEST_QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,
    )
    return app


@pytest.fixture(scope="session")
def dbos(celery_app: Celery) -> Iterator[type[DBOS]]:
    recreate_database(DATABASE_URL)
    DBOS(celery=celery_app, config={"name": "tests", "system_database_url": DATABASE_URL})
    DBOS.launch()
    yield DBOS
    DBOS.destroy()


@pytest.fixture(scope="session")
def worker(dbos: type[DBOS], celery_app: Celery) -> Iterator[Any]:
    """A real Celery worker (thread pool, 2 slots) consuming the test queue."""
    redis.Redis.from_url(BROKER_URL).flushdb()
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
        queues=[TEST_QUEUE],
    ) as controller:
        yield controller


class StatementCounter:
    """Counts SQL statements the current thread sends through the system database."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._thread = threading.get_ident()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.record(statement)

    def record(self, statement: str) -> None:
        if threading.get_ident() == self._thread:
            self.statements.append(" ".join(statement.split()))


@pytest.fixture
def count_statements(dbos: type[DBOS]) -> Iterator[StatementCounter]:
    store = DBOS._service().runtime.process.store
    counter = StatementCounter()
    event.listen(store.connections.engine, "before_cursor_execute", counter)
    # The per-step checkpoint goes to the driver directly: the store reports it.
    store.connections.statement_listeners.append(counter.record)
    yield counter
    store.connections.statement_listeners.remove(counter.record)
    event.remove(store.connections.engine, "before_cursor_execute", counter)
