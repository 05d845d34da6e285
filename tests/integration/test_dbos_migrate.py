"""``DBOS.migrate`` and ``run_dbos_database_migrations``: a privileged role creates or
upgrades a system database (creating the database itself) and grants the application's
role the use of its tables, as DBOS 3.4's do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from celery_durable import DBOS, DBOSClient, run_dbos_database_migrations
from celery_durable.error import DBOSException, DBOSInitializationError
from tests.conftest import DATABASE_URL, admin_url


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A database of this test's own, absent at first, dropped at the end."""
    name = f"{make_url(DATABASE_URL).database}_{uuid.uuid4().hex[:8]}"
    yield make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_creates_the_database_and_its_tables(scratch_url: str) -> None:
    DBOS.migrate(scratch_url)
    DBOS.migrate(scratch_url, schema="dbos")  # DBOS's default name: ours; twice is fine
    client = DBOSClient(scratch_url)
    try:
        assert client.list_workflows() == []
    finally:
        client.destroy()


def test_migrate_grants_the_application_role(scratch_url: str) -> None:
    role = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}"')
    try:
        run_dbos_database_migrations(scratch_url, application_role=role)
        with psycopg.connect(scratch_url) as connection:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                allowed = connection.execute(
                    "SELECT has_table_privilege(%s, 'celery_durable.workflow_status', %s)",
                    (role, privilege),
                ).fetchone()
                assert allowed == (True,), privilege
    finally:
        with psycopg.connect(scratch_url, autocommit=True) as connection:
            connection.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as admin:
            admin.execute(f'DROP ROLE "{role}"')


def test_what_cannot_be_honoured_raises(scratch_url: str) -> None:
    with pytest.raises(DBOSInitializationError, match="schema 'celery_durable', not 'other'"):
        DBOS.migrate(scratch_url, schema="other")
    with pytest.raises(DBOSException, match="sharding is not supported"):
        run_dbos_database_migrations(scratch_url, sharding=True)
    with pytest.raises(DBOSException, match="no_such_role"):
        DBOS.migrate(scratch_url, application_role="no_such_role")
