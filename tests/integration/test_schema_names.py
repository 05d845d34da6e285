"""DBOS's default schema name ``dbos`` stands for our tables' schema everywhere a DBOS
program may pass it (configuration, CLI, ``DBOS.migrate``, ``reset_system_database``);
any other name is refused before anything is touched."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from celery_durable import DBOS
from celery_durable.error import DBOSInitializationError
from tests.conftest import DATABASE_URL, admin_url

SCRATCH_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_schema_names")
    .render_as_string(hide_password=False)
)


def _exists(url: str) -> bool:
    name = make_url(url).database
    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


@pytest.fixture
def scratch() -> str:
    with psycopg.connect(admin_url(SCRATCH_URL), autocommit=True) as connection:
        name = make_url(SCRATCH_URL).database
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return SCRATCH_URL


def test_reset_system_database_takes_dbos_default_schema_name(scratch: str) -> None:
    DBOS.reset_system_database(system_database_url=scratch, schema="dbos")
    assert not _exists(scratch)


def test_reset_system_database_refuses_another_schema(scratch: str) -> None:
    with pytest.raises(DBOSInitializationError, match="tenant_a"):
        DBOS.reset_system_database(system_database_url=scratch, schema="tenant_a")
    assert _exists(scratch)  # nothing touched
    DBOS.reset_system_database(system_database_url=scratch)
