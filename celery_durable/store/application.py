"""The application database: where ``@DBOS.transaction`` functions run.

Each transaction's outcome is recorded in ``celery_durable.transaction_outputs`` inside
the same database transaction as the user's writes, so that a transaction that
committed is never executed again, even if the worker dies right after the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, exc

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSException, DBOSSchemaMissingError
from celery_durable.store import databases, migrator
from celery_durable.store.driver_errors import system_error, wrap_errors
from celery_durable.store.engines import ProcessEngine
from celery_durable.store.migrations import APPLICATION_MIGRATIONS
from celery_durable.store.sql import schema_version, transactions
from celery_durable.store.urls import normalize

ISOLATION_LEVELS = frozenset({"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"})


@dataclass(frozen=True, kw_only=True)
class TransactionOutput:
    function_name: str
    output: str | None
    error: str | None


class ApplicationStore:
    """The application database of one process (a pool created lazily, per process)."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = normalize(url)
        self._engines = ProcessEngine(self.url, pool_size=pool_size, isolation_level=None)

    def adopt_engine(self, engine: Engine) -> None:
        """Runs on the caller's engine (its pool; a forked child drops the parent's
        connections; never disposed here)."""
        self._engines.adopt(engine)

    def dispose(self) -> None:
        self._engines.dispose()

    def migrate(self) -> int:
        """Creates or upgrades ``transaction_outputs`` (and the database, if missing:
        after a first failure, as :meth:`SchemaStore.migrate`); safe to run twice or
        concurrently.

        Returns:
            The application schema version now in place.
        """
        action = "migrating the application database's table"
        for attempt in (1, 2):
            try:
                with self._engines.get().begin() as connection:
                    return migrator.migrate(connection, migrator.APPLICATION)
            except exc.DBAPIError as error:
                # A pooled connection that died with a server restart, or a database
                # that did not exist and now does (see SchemaStore.migrate): once more.
                if attempt == 1 and (
                    error.connection_invalidated or databases.ensure_exists(self.url)
                ):
                    continue
                raise system_error(action, error, database="Application") from error
        raise AssertionError("unreachable")

    def require_current(self) -> None:
        """Checks that ``transaction_outputs`` is in place, at this code's version,
        without changing anything (for a role that may not run DDL).

        Raises:
            DBOSSchemaMissingError: the table is missing or older than this code.
        """
        try:
            with (
                wrap_errors("reading the application schema version", database="Application"),
                self._engines.get().connect() as connection,
            ):
                version = int(
                    connection.execute(schema_version.CURRENT_APPLICATION_VERSION).scalar_one()
                )
        except DBOSSchemaMissingError:
            version = 0  # no version table: nothing was ever migrated here
        latest = APPLICATION_MIGRATIONS[-1][0]
        if version < latest:
            raise DBOSSchemaMissingError(
                f"The application database's celery_durable.transaction_outputs is at "
                f"version {version}; this code needs version {latest}. Create or upgrade "
                "it with `celery-durable migrate` or SQLAlchemyDatasource.migrate(url)"
            )

    @contextlib.contextmanager
    def transaction(self, isolation_level: str) -> Iterator[Connection]:
        """A connection in a new transaction; commits on success, rolls back on error.

        Driver errors propagate as SQLAlchemy errors: the caller decides which are
        retried (serialization failures, deadlocks) and which are the user's.
        """
        if isolation_level not in ISOLATION_LEVELS:
            raise DBOSException(
                f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, "
                f"not {isolation_level!r}"
            )
        with self._engines.get().connect() as connection:
            connection = connection.execution_options(isolation_level=isolation_level)
            with connection.begin():
                yield connection

    @staticmethod
    def recorded_output(
        connection: Connection, workflow_uuid: str, function_id: int
    ) -> TransactionOutput | None:
        row = connection.execute(
            transactions.GET_TRANSACTION_OUTPUT,
            {"workflow_uuid": workflow_uuid, "function_id": function_id},
        ).first()
        if row is None:
            return None
        return TransactionOutput(
            function_name=row.function_name, output=row.output, error=row.error
        )

    @staticmethod
    def record_output(
        connection: Connection,
        *,
        workflow_uuid: str,
        function_id: int,
        function_name: str,
        output: str | None,
        error: str | None,
    ) -> None:
        connection.execute(
            transactions.RECORD_TRANSACTION_OUTPUT,
            {
                "workflow_uuid": workflow_uuid,
                "function_id": function_id,
                "function_name": function_name,
                "output": output,
                "error": error,
                "now": now_epoch_ms(),
            },
        )


def is_retryable(error: exc.DBAPIError) -> bool:
    """Serialization failures (40001) and deadlocks (40P01): retry the transaction."""
    return getattr(error.orig, "sqlstate", None) in {"40001", "40P01"}
