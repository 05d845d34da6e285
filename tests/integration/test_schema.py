"""The system schema: created by launch and by `celery-durable migrate`, idempotently."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from celery import Celery
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from celery_durable.engine.registry import Registry
from celery_durable.error import DBOSSchemaMissingError
from celery_durable.integration.runtime import Runtime
from celery_durable.store import SystemStore
from celery_durable.store.migrations import BOOTSTRAP, LATEST_VERSION, MIGRATIONS, SCHEMA
from tests import schema_dump
from tests.conftest import DATABASE_URL, admin_url, recreate_database

MIGRATE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_migrate")
    .render_as_string(hide_password=False)
)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    recreate_database(MIGRATE_URL)
    yield MIGRATE_URL


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (SCHEMA,)
        ).fetchall()
    return {row[0] for row in rows}


def test_migrating_twice_is_harmless(fresh_database: str) -> None:
    store = SystemStore(fresh_database)
    try:
        assert store.schema.migrate() == LATEST_VERSION
        assert store.schema.migrate() == LATEST_VERSION
        assert store.schema.version() == LATEST_VERSION
    finally:
        store.dispose()
    assert tables(fresh_database) == {
        "schema_version",
        "workflow_status",
        "operation_outputs",
        "queues",
        "registered_workflows",
        "notifications",
        "workflow_events",
        "workflow_events_history",
        "streams",
        "workflow_schedules",
        "schedule_clock",
        "worker_versions",
        "version_last_seen",
        "application_versions",
        "workflow_canvas",
    }


def test_the_cli_migrates_from_many_processes_at_once(fresh_database: str) -> None:
    command = [sys.executable, "-m", "celery_durable.cli", "migrate"]
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": fresh_database}
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], results
    for stdout, _ in results:
        assert f"schema version {LATEST_VERSION}" in stdout.decode()
    with psycopg.connect(fresh_database) as connection:
        versions = connection.execute(f"SELECT version FROM {SCHEMA}.schema_version").fetchall()
    assert versions == [(version,) for version, _ in MIGRATIONS]


def test_a_database_of_an_older_version_is_upgraded_in_place(fresh_database: str) -> None:
    first_version, first_sql = MIGRATIONS[0]
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute(BOOTSTRAP)
        connection.execute(first_sql)
        connection.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, 0)", (first_version,))
        connection.execute(
            f"INSERT INTO {SCHEMA}.workflow_status (workflow_uuid, name, status, inputs, "
            "max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms, "
            "next_dispatch_at_epoch_ms) VALUES ('kept', 'old', 'SUCCESS', '{}', 1, 0, 0, 0)"
        )
    store = SystemStore(fresh_database)
    try:
        assert store.schema.migrate() == LATEST_VERSION
        assert store.workflows.get_outcome("kept") == ("old", "SUCCESS", None, None)
    finally:
        store.dispose()


def test_a_bad_database_url_is_a_clear_error_without_credentials() -> None:
    url = "postgresql://someone:s3cret@127.0.0.1:5432/no_such_database_here"
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "migrate", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "System database error while migrating the schema" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_reading_never_migrates_and_names_the_command_that_does(fresh_database: str) -> None:
    client = DBOSClient(fresh_database, "memory://")
    try:
        for read in (
            lambda: client.list_workflows(),
            lambda: client.retrieve_workflow("any"),
            lambda: client.list_workflow_steps("any"),
        ):
            with pytest.raises(DBOSSchemaMissingError, match="celery-durable migrate"):
                read()
    finally:
        client.destroy()
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": fresh_database}
    for command in (["list"], ["get", "any"], ["steps", "any"]):
        result = subprocess.run(
            [sys.executable, "-m", "celery_durable.cli", "workflows", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "celery-durable migrate" in result.stderr
    assert tables(fresh_database) == set()  # nothing was created on the way
    # `celery-durable migrate` creates both databases' tables (here one database).
    subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "migrate"], env=env, check=True, timeout=60
    )
    assert {"workflow_status", "transaction_outputs"} <= tables(fresh_database)


def _catalog(url: str) -> dict[str, list[tuple[object, ...]]]:
    """The schema's tables, columns, indexes and functions, as PostgreSQL reports them."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
        "functions": "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc AS p "
        "JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = %s",
    }
    with psycopg.connect(url) as connection:
        return {
            name: sorted(connection.execute(sql, (SCHEMA,)).fetchall())
            for name, sql in queries.items()
        }


def test_a_migrated_database_equals_a_fresh_one(fresh_database: str) -> None:
    upgraded = make_url(fresh_database).set(database=f"{make_url(fresh_database).database}_up")
    upgraded_url = upgraded.render_as_string(hide_password=False)
    recreate_database(upgraded_url)
    first_version, first_sql = MIGRATIONS[0]
    with psycopg.connect(upgraded_url, autocommit=True) as connection:
        connection.execute(BOOTSTRAP)
        connection.execute(first_sql)
        connection.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, 0)", (first_version,))
    for url in (fresh_database, upgraded_url):
        store = SystemStore(url)
        try:
            assert store.schema.migrate() == LATEST_VERSION
        finally:
            store.dispose()
    try:
        assert _catalog(upgraded_url) == _catalog(fresh_database)
        assert _catalog(fresh_database)["functions"]  # the comparison saw something
    finally:
        with psycopg.connect(admin_url(upgraded_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{upgraded.database}" WITH (FORCE)')


def test_executing_on_an_older_schema_is_refused_until_migrated(fresh_database: str) -> None:
    first_version, first_sql = MIGRATIONS[0]
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute(BOOTSTRAP)
        connection.execute(first_sql)
        connection.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, 0)", (first_version,))
    runtime = Runtime(
        celery=Celery("schema_check"),
        config={"name": "schema_check", "system_database_url": fresh_database},
        registry=Registry(),
        queues={},
    )
    try:
        with pytest.raises(
            DBOSSchemaMissingError,
            match=r"version 1; this code needs version \d+\. Upgrade it with `celery-durable",
        ):
            runtime.process.engine()
        runtime.process.migrate()
        assert runtime.process.engine().store.schema.version() == LATEST_VERSION
    finally:
        runtime.process.dispose()


def _drop(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_creates_missing_databases_as_dbos_launch_does() -> None:
    """The Quickstart's first DBOS.launch() (or `celery-durable migrate`, or a worker's
    start) on a server without the database creates it, as DBOS Transact does; a
    name that needs quoting is quoted."""
    base = make_url(DATABASE_URL)
    system = base.set(database=f"{base.database}_Created-System").render_as_string(False)
    application = base.set(database=f"{base.database}_created_app").render_as_string(False)
    for url in (system, application):
        _drop(url)
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "celery_durable.cli", "migrate"),
                *("--database-url", system, "--app-database-url", application),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "transaction_outputs" not in tables(system)
        assert {"workflow_status", "operation_outputs"} <= tables(system)
        with psycopg.connect(application) as connection:
            assert connection.execute(
                "SELECT to_regclass(%s)", (f"{SCHEMA}.transaction_outputs",)
            ).fetchone() == (f"{SCHEMA}.transaction_outputs",)
        # Again: both exist now, nothing to create, nothing fails.
        again = subprocess.run(result.args, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
    finally:
        for url in (system, application):
            _drop(url)


def test_processes_migrating_a_missing_database_at_once_all_succeed() -> None:
    """Workers starting together on a server without the database: one creates it, and
    every other one, whose migration failed before it existed, migrates once more instead
    of reporting that the database does not exist."""
    url = make_url(DATABASE_URL).set(database=f"{make_url(DATABASE_URL).database}_raced")
    raced = url.render_as_string(hide_password=False)
    _drop(raced)
    stores = [SystemStore(raced, pool_size=1) for _ in range(6)]
    start = threading.Barrier(len(stores))

    def migrate(store: SystemStore) -> int | BaseException:
        start.wait()
        try:
            return store.schema.migrate()
        except BaseException as error:  # the outcome is what the test compares
            return error

    try:
        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            outcomes = list(pool.map(migrate, stores))
        assert outcomes == [LATEST_VERSION] * len(stores)
    finally:
        for store in stores:
            store.dispose()
        _drop(raced)


def test_schema_sql_is_what_migrating_an_empty_database_produces() -> None:
    """celery_durable/store/sql/schema.sql, the schema a reviewer reads, is exactly what
    the migrations produce (rewrite it with `python -m tests.schema_dump --write`)."""
    url = schema_dump.scratch_url()
    try:
        current = schema_dump.freshly_migrated(url)
    finally:
        schema_dump.drop(url)
    assert "CREATE TABLE celery_durable.workflow_status" in current
    committed = schema_dump.SCHEMA_FILE.read_text()
    assert committed == current, (
        "celery_durable/store/sql/schema.sql is not what the migrations produce: run "
        "`python -m tests.schema_dump --write` and review the difference"
    )


def test_version_17_leaves_one_holder_per_deduplication_id_delayed_ones_included(
    fresh_database: str,
) -> None:
    # Until version 17 a DELAYED workflow did not hold its deduplication id: two could
    # share one, or share it with an ENQUEUED one. The ENQUEUED one keeps it, else the
    # earliest DELAYED one.
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute(BOOTSTRAP)
        for version, sql in MIGRATIONS:
            if version == 17:
                break
            connection.execute(sql)
            connection.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, 0)", (version,))
        rows = [
            ("enqueued", "ENQUEUED", "a", 5),
            ("delayed-behind-enqueued", "DELAYED", "a", 1),
            ("delayed-first", "DELAYED", "b", 1),
            ("delayed-second", "DELAYED", "b", 2),
        ]
        for workflow_uuid, status, key, created in rows:
            connection.execute(
                f"INSERT INTO {SCHEMA}.workflow_status (workflow_uuid, name, status, inputs, "
                "max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms, "
                "next_dispatch_at_epoch_ms, queue_name, deduplication_id) "
                "VALUES (%s, 'w', %s, '{}', 1, %s, 0, 0, 'q', %s)",
                (workflow_uuid, status, created, key),
            )
    store = SystemStore(fresh_database)
    try:
        assert store.schema.migrate() == LATEST_VERSION
    finally:
        store.dispose()
    with psycopg.connect(fresh_database) as connection:
        kept = connection.execute(
            f"SELECT workflow_uuid, deduplication_id FROM {SCHEMA}.workflow_status "
            "ORDER BY workflow_uuid"
        ).fetchall()
        assert kept == [
            ("delayed-behind-enqueued", None),
            ("delayed-first", "b"),
            ("delayed-second", None),
            ("enqueued", "a"),
        ]
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(
                f"UPDATE {SCHEMA}.workflow_status SET deduplication_id = 'b' "
                "WHERE workflow_uuid = 'delayed-second'"
            )
