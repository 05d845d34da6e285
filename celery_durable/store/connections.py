"""The system database's connections: the pools and the retry on a dead one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, exc

from celery_durable.error import DBOSQueryTimeoutError, DBOSSystemDatabaseError
from celery_durable.store.driver_errors import system_error, violates, wrap_errors
from celery_durable.store.engines import ProcessEngine
from celery_durable.store.fence import Fence, StatementListener
from celery_durable.store.group_commit import GroupCommit
from celery_durable.store.listener import NotificationListener
from celery_durable.store.sql import listing, steps
from celery_durable.store.statements import StatementPool
from celery_durable.store.urls import normalize

T = TypeVar("T")

# DBOS's default cap on its observability reads (observability_query_timeout_sec).
DEFAULT_OBSERVABILITY_TIMEOUT_MS = 30_000
# PostgreSQL's SQLSTATE for a statement cancelled (by statement_timeout).
QUERY_CANCELED = "57014"


class Connections:
    """The system database's connections in one process (pools created lazily, per
    process), shared by the stores of each concern (see :class:`SystemStore`).

    Args:
        url: A ``postgresql://`` URL.
        pool_size: Connections kept open per process.
        synchronous_checkpoints: False: executions commit asynchronously.
        session_url: Where the connections that need a session of their own go (the
            fence's advisory locks, LISTEN): directly to PostgreSQL, when ``url`` is a
            transaction-mode pooler such as PgBouncer. Given, the pooled connections
            (``url``) prepare no statements on the server. Default: ``url``.
        listen: False: nothing LISTENs (``use_listen_notify: False``); waiters poll.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        synchronous_checkpoints: bool = True,
        session_url: str | None = None,
        listen: bool = True,
    ) -> None:
        url = normalize(url)
        session_url = normalize(session_url) if session_url else None
        self.url = url
        self.session_url = session_url or url
        prepared = session_url is None or session_url == url
        self._engines = ProcessEngine(
            url, pool_size=pool_size, isolation_level="AUTOCOMMIT", prepared_statements=prepared
        )
        # Executions (claim, checkpoints, outcome) use connections of their own (the
        # fence and the statement pool below), with asynchronous commit when configured
        # so (see DBOSConfig); creating workflows always commits synchronously.
        self.synchronous_checkpoints = synchronous_checkpoints
        # Observers of the statements sent past SQLAlchemy (see WorkflowExecution).
        self.statement_listeners: list[StatementListener] = []
        # The fences of all this process's executions, on one connection; the
        # connections their checkpoints borrow, one statement at a time.
        self.fence = Fence(self._connect_fence, self.statement_listeners)
        self._prepared_statements = prepared
        self.statements = StatementPool(self._connect_statements, pool_size)
        self.checkpoints = GroupCommit(
            self.statements,
            steps.RECORD_STEP_SQL,
            steps.RECORD_STEPS_SQL,
            listeners=self.statement_listeners,
        )
        # Notifications for waiters outside any workflow (started on first use).
        self.notifications = NotificationListener(self.session_url, listen=listen)
        # The statement timeout of the listings (see observe); None: uncapped.
        self.observability_timeout_ms: int | None = DEFAULT_OBSERVABILITY_TIMEOUT_MS

    def set_observability_timeout(self, seconds: float | None) -> None:
        """DBOS's ``observability_query_timeout_sec``: None keeps the default (30 s, as
        DBOS); 0 or less uncaps the listings; under a millisecond is 1 ms (PostgreSQL
        reads 0 as no timeout)."""
        if seconds is None:
            self.observability_timeout_ms = DEFAULT_OBSERVABILITY_TIMEOUT_MS
        else:
            self.observability_timeout_ms = max(1, int(seconds * 1000)) if seconds > 0 else None

    @property
    def engine(self) -> Engine:
        """The process's SQLAlchemy engine (autocommit: one statement, one transaction)."""
        return self._engines.get()

    def adopt_engine(self, engine: Engine) -> None:
        """Runs the pooled statements on the caller's engine (see ProcessEngine.adopt)."""
        self._engines.adopt(engine)

    def check(self) -> None:
        """One round trip on a pooled connection: raises if the database is unreachable.

        Raises:
            DBOSSystemDatabaseError: it cannot be reached.
        """
        self.run("checking the connection", lambda c: c.exec_driver_sql("SELECT 1"))

    def _connect_fence(self) -> psycopg.Connection[Any]:
        return self._connect_execution(self.session_url, "celery_durable fence", prepared=True)

    def _connect_statements(self) -> psycopg.Connection[Any]:
        return self._connect_execution(
            self.url, "celery_durable", prepared=self._prepared_statements
        )

    def _connect_execution(
        self, url: str, application_name: str, *, prepared: bool
    ) -> psycopg.Connection[Any]:
        """A connection for executions' statements (asynchronous commit if configured)."""
        options = "" if self.synchronous_checkpoints else "-c synchronous_commit=off"
        connection = psycopg.connect(
            url,
            autocommit=True,
            application_name=application_name,
            options=options,
        )
        if not prepared:
            connection.prepare_threshold = None
        return connection

    def dispose(self) -> None:
        self._engines.dispose()
        self.fence.close()
        self.statements.close()
        self.notifications.stop()

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[Connection]:
        """A pooled connection in one READ COMMITTED transaction (committed on exit)."""
        with (
            wrap_errors(action),
            self.engine.connect() as connection,
        ):
            connection = connection.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                yield connection

    def observe(self, action: str, work: Callable[[Connection], T]) -> T:
        """Runs a read-only listing (``work``) as :meth:`run` does, under the statement
        timeout of observability reads (set for its transaction only), as DBOS caps
        them: one scanning a huge table cannot hold back vacuum for minutes.

        Raises:
            DBOSQueryTimeoutError: it ran past the timeout (cancelled by PostgreSQL).
            DBOSSystemDatabaseError: any other database failure.
        """
        timeout_ms = self.observability_timeout_ms
        if timeout_ms is None:
            return self.run(action, work)

        def capped(connection: Connection) -> T:
            with connection.begin():
                connection.execute(listing.SET_STATEMENT_TIMEOUT, {"timeout": f"{timeout_ms}ms"})
                return work(connection)

        try:
            return self.run(action, capped, isolation_level="READ COMMITTED")
        except DBOSSystemDatabaseError as error:
            driver = getattr(error.__cause__, "orig", None)  # SQLAlchemy's, then psycopg's
            if getattr(driver, "sqlstate", None) == QUERY_CANCELED:
                raise DBOSQueryTimeoutError(timeout_ms / 1000) from error
            raise

    def run(
        self,
        action: str,
        work: Callable[[Connection], T],
        deduplicated: Callable[[], Exception] | None = None,
        isolation_level: str | None = None,
    ) -> T:
        """Runs ``work`` on a pooled autocommit connection.

        If the pooled connection turns out dead (the server restarted since it was
        opened), SQLAlchemy invalidates the pool and the work runs once more on a fresh
        connection. Every caller's work is safe to repeat.
        """
        for attempt in (1, 2):
            try:
                with self.engine.connect() as connection:
                    if isolation_level is not None:
                        connection = connection.execution_options(isolation_level=isolation_level)
                    return work(connection)
            except exc.DBAPIError as error:
                if attempt == 1 and error.connection_invalidated:
                    continue
                if deduplicated is not None and violates(error, "deduplication_idx"):
                    raise deduplicated() from error
                raise system_error(action, error) from error
        raise AssertionError("unreachable")
