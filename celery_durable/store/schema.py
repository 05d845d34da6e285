"""The system database's schema: creating or upgrading it, and checking its version."""

from __future__ import annotations

from sqlalchemy import Connection

from celery_durable.error import DBOSSchemaMissingError, DBOSSystemDatabaseError
from celery_durable.store import databases, migrator
from celery_durable.store.connections import Connections
from celery_durable.store.migrations import LATEST_VERSION
from celery_durable.store.sql import schema_version


class SchemaStore:
    """Migrations of the system database, and the version check before executing."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def migrate(self) -> int:
        """Creates or upgrades the schema; safe to run twice or concurrently.

        A migration that fails on a database that does not exist creates it (as DBOS
        does), over the direct session URL (a pooler in front may not serve
        ``postgres``), and runs once more: the common case costs no extra connection.

        Returns:
            The schema version now in place.
        """

        def work(connection: Connection) -> int:
            connection = connection.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                return migrator.migrate(connection, migrator.SYSTEM)

        # Through run: a pooled connection that died with a server restart is retried.
        run = self._connections.run
        try:
            return run("migrating the schema", work)
        except DBOSSystemDatabaseError:
            if not databases.ensure_exists(self._connections.session_url):
                raise
        return run("migrating the schema", work)

    def version(self) -> int:
        """The schema version in place (raises if there is no schema)."""
        return self._connections.run(
            "reading the schema version",
            lambda connection: int(connection.execute(schema_version.CURRENT_VERSION).scalar_one()),
        )

    def require_current(self) -> None:
        """Checks, before this process executes any workflow, that the schema is the one
        this code writes (executions against an older one would record what a later
        migration then misreads).

        Raises:
            DBOSSchemaMissingError: no tables, or an older schema version.
        """
        version = self.version()
        if version < LATEST_VERSION:
            raise DBOSSchemaMissingError(
                f"The system database's celery_durable schema is at version {version}; "
                f"this code needs version {LATEST_VERSION}. Upgrade it with `celery-durable "
                "migrate` (or DBOS.launch(), or by starting a worker)"
            )

    def reset(self, *, truncate: bool) -> None:
        """Destroys every workflow, as DBOS's ``reset_system_database``: drops the
        database (``DBOS.launch()`` creates it again), or, with ``truncate`` or when the
        URL names the ``postgres`` database, empties (or drops) the schema's tables.
        For tests only."""
        if not truncate:
            self._connections.dispose()  # no pooled session keeps the database open
            if databases.drop(self._connections.session_url):
                return

        def work(connection: Connection) -> None:
            if not truncate:
                connection.execute(schema_version.DROP_SCHEMA)
                return
            tables = list(connection.execute(schema_version.RESETTABLE_TABLES).scalars())
            if tables:
                connection.execute(schema_version.truncate_tables(tables))

        self._connections.run("resetting the system database", work)
