"""The migrations' bookkeeping: the schema versions applied to the system and the
application database, and the lock that serializes migrating."""

from __future__ import annotations

from sqlalchemy import TextClause, text

from celery_durable.store.migrations import MIGRATION_LOCK_KEY, SCHEMA

LOCK_MIGRATIONS = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=MIGRATION_LOCK_KEY)

CURRENT_VERSION = text(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_version")

RECORD_VERSION = text(
    f"INSERT INTO {SCHEMA}.schema_version (version, applied_at_epoch_ms) VALUES (:version, :now)"
)

CURRENT_APPLICATION_VERSION = text(
    f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.application_schema_version"
)

RECORD_APPLICATION_VERSION = text(
    f"INSERT INTO {SCHEMA}.application_schema_version (version, applied_at_epoch_ms) "
    "VALUES (:version, :now)"
)

# What DBOS.reset_system_database(truncate=True) empties: every table but the versions.
RESETTABLE_TABLES = text(
    "SELECT tablename FROM pg_tables WHERE schemaname = :schema "
    "AND tablename NOT IN ('schema_version', 'application_schema_version') ORDER BY tablename"
).bindparams(schema=SCHEMA)


def truncate_tables(tables: list[str]) -> TextClause:
    """Empties ``tables`` of the schema in one statement."""
    names = ", ".join(f'{SCHEMA}."{table}"' for table in tables)
    return text(f"TRUNCATE {names}")


DROP_SCHEMA = text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
