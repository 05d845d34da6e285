"""Creating a database that does not exist yet, as DBOS Transact's launch does.

``DBOS.launch()``, ``celery-durable migrate`` and a starting worker create the system
(and application) database when it is missing: a migration that fails checks, over the
same server's ``postgres`` maintenance database, whether its database exists, creates
it if not, and runs again (so a migration that succeeds costs no extra connection).
Without the privilege to create it (or without access to ``postgres``) nothing is
created and the migration's own error is raised, as it would have been anyway.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

# The database PostgreSQL's own tools connect to when they create another one.
MAINTENANCE_DATABASE = "postgres"

_EXISTS = "SELECT 1 FROM pg_database WHERE datname = %s"


def ensure_exists(url: str) -> bool:
    """Creates the database named in ``url`` if the server has none of that name.

    Called after a migration failed: it answers whether one more try is worth it.

    Returns:
        True when the database exists now — created by this call, or by another process
        (workers starting together race to create it, and the losers' migrations failed
        before it existed); False when the URL names the maintenance database or the
        server could not be asked.
    """
    parsed = make_url(url)
    name = parsed.database
    if not name or name == MAINTENANCE_DATABASE:
        return False
    admin = parsed.set(drivername="postgresql", database=MAINTENANCE_DATABASE).render_as_string(
        hide_password=False
    )
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
            if connection.execute(_EXISTS, (name,)).fetchone() is not None:
                return True
            try:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                # Another process created it meanwhile: DuplicateDatabase when its CREATE
                # had committed, UniqueViolation (on pg_database's name index) when both
                # ran at once.
                return True
    except psycopg.Error as error:
        # The migration's own connection says what is wrong, in the usual words.
        logger.debug("Could not check or create database %r: %s", name, error)
        return False
    logger.info("Created database %r", name)
    return True


def drop(url: str) -> bool:
    """Drops the database named in ``url`` (closing its sessions), as DBOS's
    ``reset_system_database`` does.

    Returns:
        False when ``url`` names the maintenance database, which is never dropped.
    """
    parsed = make_url(url)
    name = parsed.database
    if not name or name == MAINTENANCE_DATABASE:
        return False
    admin = parsed.set(drivername="postgresql", database=MAINTENANCE_DATABASE).render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    logger.info("Dropped database %r", name)
    return True
