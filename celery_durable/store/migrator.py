"""Applying a versioned schema: each migration once, in order, under one lock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, TextClause

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.migrations import (
    APPLICATION_BOOTSTRAP,
    APPLICATION_MIGRATIONS,
    BOOTSTRAP,
    MIGRATIONS,
)
from celery_durable.store.sql import schema_version


@dataclass(frozen=True, kw_only=True)
class VersionedSchema:
    """A list of migrations and the table that records which ones are applied."""

    bootstrap: str
    current_version: TextClause
    record_version: TextClause
    migrations: tuple[tuple[int, str], ...]


SYSTEM = VersionedSchema(
    bootstrap=BOOTSTRAP,
    current_version=schema_version.CURRENT_VERSION,
    record_version=schema_version.RECORD_VERSION,
    migrations=MIGRATIONS,
)

APPLICATION = VersionedSchema(
    bootstrap=APPLICATION_BOOTSTRAP,
    current_version=schema_version.CURRENT_APPLICATION_VERSION,
    record_version=schema_version.RECORD_APPLICATION_VERSION,
    migrations=APPLICATION_MIGRATIONS,
)


def migrate(connection: Connection, schema: VersionedSchema) -> int:
    """Applies the migrations newer than the recorded version, inside the caller's
    transaction, under a transaction-level advisory lock (concurrent migrators wait
    and then find nothing to do). Returns the version now in place."""
    connection.execute(schema_version.LOCK_MIGRATIONS)
    connection.exec_driver_sql(schema.bootstrap)
    current = int(connection.execute(schema.current_version).scalar_one())
    for version, sql in schema.migrations:
        if version <= current:
            continue
        connection.exec_driver_sql(sql)
        connection.execute(schema.record_version, {"version": version, "now": now_epoch_ms()})
        current = version
    return current
