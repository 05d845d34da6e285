"""What the command line needs of the machinery besides a service: migrating the
databases, one recovery sweep, database URLs checked and redacted, the embedded servers
of the demo, and how long a worker's version counts as running."""

from __future__ import annotations

from celery import Celery

from celery_durable.integration.app_version import version_live_ms
from celery_durable.integration.config import DEFAULT_CONFIG
from celery_durable.integration.recovery import recover
from celery_durable.store import Redispatch, SystemStore, redact
from celery_durable.store.application import ApplicationStore
from celery_durable.store.embedded import start_postgres, start_redis, stop_postgres
from celery_durable.store.migration_script import grant_role, migration_script, role_grants
from celery_durable.store.migrations import SCHEMA as SYSTEM_SCHEMA
from celery_durable.store.urls import normalize as normalize_url

# The names a program may give our tables' schema: ours, and DBOS's default ("dbos"),
# which a DBOS program passes or configures for the same tables.
SCHEMA_NAMES = frozenset({SYSTEM_SCHEMA, "dbos"})

__all__ = [
    "DEFAULT_VERSION_LIVE_MS",
    "SCHEMA_NAMES",
    "SYSTEM_SCHEMA",
    "migrate_databases",
    "migration_script",
    "normalize_url",
    "recover_now",
    "redact",
    "reset_database",
    "role_grants",
    "start_postgres",
    "start_redis",
    "stop_postgres",
]

# A version runs while one of its workers swept this recently, with the default sweep
# interval (the command line does not know the workers' configuration).
DEFAULT_VERSION_LIVE_MS = version_live_ms(DEFAULT_CONFIG["recovery_interval_seconds"])


def migrate_databases(
    database_url: str,
    app_database_url: str | None = None,
    *,
    application_role: str | None = None,
) -> int:
    """Creates or upgrades the system database's tables and the application database's
    (by default the system database); returns the system schema version. With
    ``application_role``, grants that role the use of the tables in both databases
    (as ``dbos migrate --app-role``), so that the application need not own them."""
    store = SystemStore(database_url, pool_size=1)
    application = ApplicationStore(app_database_url or database_url, pool_size=1)
    try:
        version = store.schema.migrate()
        application.migrate()
    finally:
        store.dispose()
        application.dispose()
    if application_role is not None:
        grant_role(database_url, application_role)
        if app_database_url is not None and app_database_url != database_url:
            grant_role(app_database_url, application_role)
    return version


def recover_now(database_url: str, celery: Celery, *, grace_seconds: float) -> list[Redispatch]:
    """One recovery sweep (nothing while another runs), published with ``celery``."""
    store = SystemStore(database_url, pool_size=1)
    try:
        return recover(store, celery, grace_seconds=grace_seconds)
    finally:
        store.dispose()


def reset_database(database_url: str, *, truncate: bool) -> None:
    """``DBOS.reset_system_database(system_database_url=...)``: drops the database (or
    empties its tables), for tests."""
    store = SystemStore(database_url, pool_size=1)
    try:
        store.schema.reset(truncate=truncate)
    finally:
        store.dispose()
