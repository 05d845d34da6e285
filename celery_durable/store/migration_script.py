"""The system schema's migrations as a SQL script, and the grants an application role
needs on the schema (``celery-durable migrate --print-migrations / --app-role``)."""

from __future__ import annotations

from sqlalchemy import create_engine, exc, text

from celery_durable.error import DBOSException
from celery_durable.store.migrations import (
    BOOTSTRAP,
    LATEST_VERSION,
    MIGRATION_LOCK_KEY,
    MIGRATIONS,
    SCHEMA,
)
from celery_durable.store.urls import sqlalchemy_url


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def migration_script(first: int) -> str:
    """The SQL that applies migrations ``first`` to the latest, as ``celery-durable
    migrate`` applies them: in one transaction under the migrators' advisory lock, each
    version recorded. From 1 it also creates the schema and its version table.

    Raises:
        ValueError: ``first`` is not a migration number.
    """
    if not 1 <= first <= LATEST_VERSION:
        raise ValueError(
            f"Migration {first} does not exist: valid migrations are 1 through {LATEST_VERSION}"
        )
    lines = [
        f"-- celery_durable system database migrations {first} to {LATEST_VERSION} "
        f"(schema {SCHEMA})",
        "-- One transaction: run it as it is (psql -f), or not at all.",
        "BEGIN;",
        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});",
    ]
    if first == 1:
        lines.append(BOOTSTRAP.strip())
    for version, sql in MIGRATIONS:
        if version < first:
            continue
        lines.append(f"-- Migration {version}")
        lines.append(sql.strip())
        lines.append(
            f"INSERT INTO {SCHEMA}.schema_version (version, applied_at_epoch_ms) VALUES "
            f"({version}, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);"
        )
    lines.append("COMMIT;")
    return "\n".join(lines)


def role_grants(role: str) -> list[str]:
    """The statements that let ``role`` use celery_durable's schema: its tables,
    sequences and functions, present and future (DBOS's ``--app-role`` grants)."""
    schema, grantee = quote_identifier(SCHEMA), quote_identifier(role)
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
        f"GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON TABLES TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON SEQUENCES TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT EXECUTE ON FUNCTIONS TO {grantee}",
    ]


def grant_role(database_url: str, role: str) -> None:
    """Runs :func:`role_grants` in the database ``database_url`` names.

    Raises:
        DBOSException: the grants failed (no such role, not allowed to grant).
    """
    engine = create_engine(sqlalchemy_url(database_url), pool_size=1)
    try:
        with engine.begin() as connection:
            for statement in role_grants(role):
                connection.execute(text(statement))
    except exc.DBAPIError as error:
        raise DBOSException(
            f"Granting {role} access to schema {SCHEMA} failed: {error.orig}"
        ) from None
    finally:
        engine.dispose()
