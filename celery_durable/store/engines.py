"""Connection plumbing shared by the system and application stores."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc

from celery_durable.store.liveness import lost
from celery_durable.store.urls import sqlalchemy_url


class ProcessEngine:
    """One SQLAlchemy engine per process: a forked worker child gets a fresh pool.

    There is no pre-ping (a round trip on every checkout). A pooled connection whose
    server hung up (a restart) is found lost at checkout without a round trip
    (:func:`~celery_durable.store.liveness.lost`) and replaced; one that dies unseen
    fails once, SQLAlchemy invalidates the pool, and the stores retry on a fresh
    connection.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        isolation_level: str | None,
        prepared_statements: bool = True,
    ) -> None:
        self.url = url
        self._pool_size = pool_size
        # False behind a transaction-mode pooler (PgBouncer before 1.21): psycopg then
        # never prepares statements on the server (a prepared statement lives in one
        # server session, which the pooler does not keep for a client).
        self._prepared_statements = prepared_statements
        self._isolation_level = isolation_level
        self._engine: Engine | None = None
        self._pid = 0
        # An engine the caller owns (DBOSClient's system_database_engine, a datasource's
        # engine), used as is.
        self._given: Engine | None = None

    def adopt(self, engine: Engine) -> None:
        """Uses the caller's engine (its pool, its settings; never disposed here),
        with this engine's isolation level on its connections."""
        if self._isolation_level is not None:
            engine = engine.execution_options(isolation_level=self._isolation_level)
        self._given = engine
        self._pid = os.getpid()

    def get(self) -> Engine:
        if self._given is not None:
            if self._pid != os.getpid():
                # A forked child: the parent's pooled connections stay the parent's
                # (SQLAlchemy's own recipe for an engine shared across a fork).
                self._given.dispose(close=False)
                self._pid = os.getpid()
            return self._given
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                # Inherited across fork: drop the parent's connections without closing
                # them (they still belong to the parent).
                self._engine.dispose(close=False)
            options: dict[str, Any] = {}
            if self._isolation_level is not None:
                options["isolation_level"] = self._isolation_level
            connect_args: dict[str, Any] = {}
            if not self._prepared_statements:
                connect_args["prepare_threshold"] = None
            if connect_args:
                options["connect_args"] = connect_args
            self._engine = create_engine(
                sqlalchemy_url(self.url),
                pool_size=self._pool_size,
                max_overflow=self._pool_size,
                **options,
            )
            event.listen(self._engine, "checkout", _replace_if_lost)
            self._pid = os.getpid()
        return self._engine

    def dispose(self) -> None:
        if self._given is not None:
            return  # the caller's engine: the caller disposes of it
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def _replace_if_lost(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A checkout of a connection whose server hung up: SQLAlchemy discards it and
    checks out another (its pessimistic disconnect handling, without the ping)."""
    if lost(dbapi_connection):
        raise exc.DisconnectionError("the server closed the connection")
