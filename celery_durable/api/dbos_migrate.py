"""``DBOS.migrate`` and ``run_dbos_database_migrations``: create or upgrade a system
database from a privileged role, optionally granting the application's role the use of
its tables (what ``celery-durable migrate -r ROLE`` runs)."""

from __future__ import annotations

from celery_durable.error import DBOSException, DBOSInitializationError
from celery_durable.service.tools import SCHEMA_NAMES, SYSTEM_SCHEMA, migrate_databases


def migrate_system_database(
    system_database_url: str,
    *,
    schema: str = "dbos",
    application_role: str | None = None,
    sharding: bool = False,
) -> None:
    """Creates the database if it is missing, creates or upgrades its tables (the
    application database's table too, which lives there unless configured elsewhere) and,
    with ``application_role``, grants that role the use of them.

    Raises:
        DBOSInitializationError: a ``schema`` other than ``celery_durable`` (DBOS's
            default name ``dbos`` stands for it).
        DBOSException: ``sharding=True`` (no sharded system databases here), or the
            migration or the grants failed.
    """
    if schema not in SCHEMA_NAMES:
        raise DBOSInitializationError(
            f"celery_durable's tables live in the schema {SYSTEM_SCHEMA!r}, not {schema!r}: "
            "give the application a system database of its own to keep two apart"
        )
    if sharding:
        raise DBOSException("sharding is not supported by celery_durable: omit sharding")
    migrate_databases(system_database_url, application_role=application_role)


def run_dbos_database_migrations(
    system_database_url: str,
    *,
    schema: str = "dbos",
    application_role: str | None = None,
    sharding: bool = False,
) -> None:
    """As ``dbos.run_dbos_database_migrations`` (``DBOS.migrate``); a failure raises
    its ``DBOSException`` where DBOS's prints it and exits."""
    migrate_system_database(
        system_database_url, schema=schema, application_role=application_role, sharding=sharding
    )
