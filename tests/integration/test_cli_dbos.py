"""``dbos``'s command line on celery_durable: ``celery-durable workflow ...``, ``queue
list``, ``migrate``'s options, ``version``, ``reset``, ``start``, ``init``,
``postgres start|stop``, run as a user runs them (subprocesses) against real PostgreSQL,
a real broker and a real worker. Workflows here are found by their own user name or
queue, so other tests' rows never match."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery
from sqlalchemy.engine import make_url

from celery_durable import DBOS, DBOSClient
from celery_durable.store.migrations import LATEST_VERSION
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE, admin_url

pytestmark = pytest.mark.usefixtures("worker")

# DBOS 3.4's WorkflowStatus attributes: `dbos workflow list/get/fork` print them all.
DBOS_STATUS_FIELDS = {
    *("app_id", "app_version", "application_name", "assumed_role", "attributes"),
    *("authenticated_roles", "authenticated_user", "class_name", "completed_at"),
    *("config_name", "created_at", "deduplication_id", "delay_until_epoch_ms"),
    *("dequeued_at", "error", "executor_id", "forked_from", "input", "name", "output"),
    *("parent_shard_key", "parent_workflow_id", "priority", "queue_name"),
    *("queue_partition_key", "recovery_attempts", "schedule_name", "shard_key", "status"),
    *("updated_at", "was_forked_from", "workflow_deadline_epoch_ms", "workflow_id"),
    "workflow_timeout_ms",
}
DBOS_STEP_FIELDS = {
    *("child_shard_key", "child_workflow_id", "completed_at_epoch_ms", "error"),
    *("function_id", "function_name", "output", "started_at_epoch_ms"),
}


def run(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``celery-durable ARGS`` with no database or broker in the environment unless
    ``env`` says (with no broker, what the commands start a worker publishes)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CELERY_DURABLE_") and k != "CELERY_BROKER_URL"
    }
    return subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(*args: str, **kwargs: Any) -> str:
    result = run(*args, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def as_json(*args: str, **kwargs: Any) -> Any:
    output = ok(*args, **kwargs)
    assert len(output.strip().splitlines()) == 1, output  # one line, as dbos prints
    return json.loads(output)


@pytest.fixture
def client(worker: Any, celery_app: Celery) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


@pytest.fixture
def prefix() -> str:
    return f"clidbos-{uuid.uuid4().hex[:8]}-"


@DBOS.step()
def cli_dbos_add(a: int, b: int) -> int:
    return a + b


@DBOS.workflow()
def cli_dbos_sum(a: int, b: int) -> int:
    return cli_dbos_add(a, b) + cli_dbos_add(a, 0)


@DBOS.workflow()
def cli_dbos_fails() -> None:
    raise ValueError("no luck")


@DBOS.workflow()
def cli_dbos_waits() -> Any:
    return DBOS.recv("go", timeout_seconds=120)


def enqueue(client: DBOSClient, name: str, workflow_id: str, *args: Any, **options: Any) -> str:
    handle = client.enqueue({"workflow_name": name, "workflow_id": workflow_id, **options}, *args)
    return handle.workflow_id


def ids(documents: list[dict[str, Any]]) -> list[str]:
    return [document["workflow_id"] for document in documents]


def test_workflow_list_get_and_steps_print_dbos_json(client: DBOSClient, prefix: str) -> None:
    user = f"{prefix}user"
    first = enqueue(client, "cli_dbos_sum", f"{prefix}1", 1, 2, authenticated_user=user)
    second = enqueue(client, "cli_dbos_sum", f"{prefix}2", 3, 4, authenticated_user=user)
    failed = enqueue(client, "cli_dbos_fails", f"{prefix}3", authenticated_user=user)
    assert client.retrieve_workflow(first).get_result(timeout=60) == 4
    assert client.retrieve_workflow(second).get_result(timeout=60) == 10
    with pytest.raises(ValueError):
        client.retrieve_workflow(failed).get_result(timeout=60)
    url = ["-s", DATABASE_URL]

    listed = as_json("workflow", "list", *url, "--user", user)
    assert ids(listed) == [first, second, failed]  # oldest first, as dbos
    assert set(listed[0]) >= DBOS_STATUS_FIELDS
    assert listed[0]["input"] == {"args": [1, 2], "kwargs": {}}
    assert listed[0]["output"] == 4 and listed[0]["authenticated_user"] == user
    assert listed[2]["status"] == "ERROR" and listed[2]["error"] == "no luck"  # str(error)
    assert ids(as_json("workflow", "list", *url, "-u", user, "--sort-desc")) == [
        failed,
        second,
        first,
    ]
    assert ids(as_json("workflow", "list", *url, "-u", user, "-d", "-l", "1", "-o", "1")) == [
        second
    ]
    assert ids(as_json("workflow", "list", *url, "-u", user, "-S", "error")) == [failed]
    assert ids(as_json("workflow", "list", *url, "-u", user, "-n", "cli_dbos_fails")) == [failed]
    # No workflow has an owning application: every one matches, as DBOS's unowned rows.
    assert ids(as_json("workflow", "list", *url, "-u", user, "-a", "any-app")) == ids(listed)
    assert as_json("workflow", "list", *url, "-u", f"{prefix}nobody") == []
    created = listed[1]["created_at"]
    since = _iso(created)
    assert ids(as_json("workflow", "list", *url, "-u", user, "-t", since)) == [second, failed]
    # dbos's default limit is 10: eleven workflows list ten.
    many = [
        enqueue(client, "cli_dbos_sum", f"{prefix}m{n:02}", n, 0, authenticated_user=f"{prefix}m")
        for n in range(11)
    ]
    assert len(as_json("workflow", "list", *url, "-u", f"{prefix}m")) == 10
    for workflow_id in many:
        client.retrieve_workflow(workflow_id).get_result(timeout=60)

    document = as_json("workflow", "get", first, *url)
    assert document["workflow_id"] == first and document["status"] == "SUCCESS"
    assert set(document) >= DBOS_STATUS_FIELDS
    steps = as_json("workflow", "steps", first, "--sys-db-url", DATABASE_URL)
    assert [step["function_name"] for step in steps] == [cli_dbos_add.__qualname__] * 2
    assert [step["output"] for step in steps] == [3, 1]
    assert set(steps[0]) >= DBOS_STEP_FIELDS
    # A bad status is a one-line error listing the statuses; an unknown id exits 1.
    bad = run("workflow", "list", *url, "--status", "DONE")
    assert bad.returncode == 2 and "SUCCESS" in bad.stderr
    missing = run("workflow", "get", f"{prefix}missing", *url)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def _iso(epoch_ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat()


def test_queue_list_cancel_resume_and_fork(client: DBOSClient, prefix: str) -> None:
    url = ["-s", DATABASE_URL]
    idle_queue = f"{prefix}nobody-consumes"
    idle = enqueue(client, "cli_dbos_sum", f"{prefix}idle", 1, 1, queue_name=idle_queue)
    for command in (("workflow", "queue", "list"), ("queue", "list")):
        found = as_json(*command, *url, "--queue-name", idle_queue)
        assert ids(found) == [idle] and found[0]["status"] == "ENQUEUED"
        assert ids(as_json(*command, *url, "-q", idle_queue, "-S", "PENDING")) == []
    assert ok("workflow", "cancel", idle, *url) == ""  # dbos prints nothing
    assert as_json("queue", "list", *url, "-q", idle_queue) == []
    assert client.retrieve_workflow(idle).get_status().status == "CANCELLED"

    waiting = enqueue(client, "cli_dbos_waits", f"{prefix}waits")
    _wait_for_status(client, waiting, "PENDING")
    ok("workflow", "cancel", waiting, *url)
    assert client.retrieve_workflow(waiting).get_status().status == "CANCELLED"
    # Resumed with no broker: committed, and a worker publishes it.
    assert ok("workflow", "resume", waiting, *url) == ""
    _wait_for_status(client, waiting, "PENDING")
    client.send(waiting, "done", "go")
    assert client.retrieve_workflow(waiting).get_result(timeout=60) == "done"

    original = enqueue(client, "cli_dbos_sum", f"{prefix}original", 5, 6)
    assert client.retrieve_workflow(original).get_result(timeout=60) == 16
    custom = f"{prefix}forked"
    forked = as_json("workflow", "fork", original, *url, "--step", "2", "-f", custom)
    assert forked["workflow_id"] == custom and forked["forked_from"] == original
    assert set(forked) >= DBOS_STATUS_FIELDS
    assert client.retrieve_workflow(custom).get_result(timeout=60) == 16
    steps = client.list_workflow_steps(custom)
    assert [step["output"] for step in steps] == [11, 5]
    again = as_json("workflow", "fork", original, *url, "-v", "some-version")
    assert again["workflow_id"] not in (original, custom)
    assert again["app_version"] == "some-version"
    client.cancel_workflow(again["workflow_id"])


def _wait_for_status(client: DBOSClient, workflow_id: str, status: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while client.retrieve_workflow(workflow_id).get_status().status != status:
        assert time.monotonic() < deadline, f"{workflow_id} never became {status}"
        time.sleep(0.05)


def test_the_database_url_comes_from_the_flag_environment_or_dbos_config(
    tmp_path: Path,
) -> None:
    missing = run("workflow", "list", cwd=tmp_path)
    assert missing.returncode == 1
    assert "Missing database URL" in missing.stderr and "-s/--sys-db-url" in missing.stderr
    assert isinstance(
        as_json("workflow", "list", env={"CELERY_DURABLE_DATABASE_URL": DATABASE_URL}), list
    )
    (tmp_path / "dbos-config.yaml").write_text(
        "name: cli-test\nsystem_database_url: ${CLI_TEST_URL}\n"
    )
    found = as_json("workflow", "list", "-l", "1", cwd=tmp_path, env={"CLI_TEST_URL": DATABASE_URL})
    assert isinstance(found, list)
    wrong_schema = run("workflow", "list", "-s", DATABASE_URL, "--schema", "other")
    assert wrong_schema.returncode == 2 and "celery_durable" in wrong_schema.stderr
    assert isinstance(as_json("workflow", "list", "-s", DATABASE_URL, "--schema", "dbos"), list)


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A database of this test's own (absent at first), dropped at the end."""
    name = f"{make_url(DATABASE_URL).database}_{uuid.uuid4().hex[:8]}"
    url = make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _exists(url: str) -> bool:
    name = make_url(url).database
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def test_reset_drops_the_system_database_after_confirmation(scratch_url: str) -> None:
    assert f"schema version {LATEST_VERSION}" in ok("migrate", "-s", scratch_url)
    declined = run("reset", "-s", scratch_url, stdin="n\n")
    assert declined.returncode == 0 and "Operation cancelled." in declined.stdout
    assert _exists(scratch_url)
    ok("reset", "--yes", "--sys-db-url", scratch_url)
    assert not _exists(scratch_url)


def test_printed_migrations_build_the_schema_and_app_role_grants(scratch_url: str) -> None:
    script = ok("migrate", "--print-migrations", "all")
    assert script.startswith("-- celery_durable system database migrations 1 to")
    later = ok("migrate", "--print-migrations", str(LATEST_VERSION))
    assert f"-- Migration {LATEST_VERSION}" in later and "-- Migration 1\n" not in later
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{make_url(scratch_url).database}"')
    with psycopg.connect(scratch_url, autocommit=True) as connection:
        connection.execute(script.encode())
    # Everything is in place: migrate finds nothing to do.
    assert f"schema version {LATEST_VERSION}" in ok("migrate", "-s", scratch_url)
    assert json.loads(ok("workflow", "list", "-s", scratch_url)) == []

    role = f"clidbos_{uuid.uuid4().hex[:8]}"
    grants = ok("migrate", "--print-user-role", "-r", role)
    assert f'GRANT USAGE ON SCHEMA "celery_durable" TO "{role}";' in grants
    with psycopg.connect(scratch_url, autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{role}"')
        try:
            ok("migrate", "-s", scratch_url, "--app-role", role)
            allowed = connection.execute(
                "SELECT has_table_privilege(%s, 'celery_durable.workflow_status', 'INSERT')",
                (role,),
            ).fetchone()
            assert allowed == (True,)
        finally:
            connection.execute(f'DROP OWNED BY "{role}"')
            connection.execute(f'DROP ROLE "{role}"')
    refusals = {
        ("--sharding",): "sharded system databases are not supported",
        ("--print-user-role",): "--print-user-role requires --app-role",
        ("--print-migrations", "0"): "Migration 0 does not exist",
        ("--print-migrations", "x"): "expected 'all' or a migration number",
        ("--print-migrations", "all", "--print-user-role", "-r", "r"): "cannot be combined",
    }
    for arguments, message in refusals.items():
        refused = run("migrate", "-s", scratch_url, *arguments)
        assert refused.returncode == 1 and message in refused.stderr, arguments


def _dbos_start(tmp_path: Path, commands: list[str]) -> subprocess.CompletedProcess[str]:
    listed = "".join(f"    - {command!r}\n" for command in commands)
    (tmp_path / "dbos-config.yaml").write_text(
        f"name: start-test\nruntimeConfig:\n  start:\n{listed}"
    )
    return run("start", cwd=tmp_path)


def test_start_runs_the_start_commands_of_dbos_config(tmp_path: Path) -> None:
    result = _dbos_start(tmp_path, ["echo first", "echo second"])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "first" in lines and "second" in lines
    failing = _dbos_start(tmp_path, ["echo first; exit 3", "echo second"])
    assert failing.returncode == 3
    lines = failing.stdout.splitlines()
    assert "first" in lines and "second" not in lines and "Executing: echo second" not in lines
    (tmp_path / "dbos-config.yaml").write_text("name: start-test\n")
    nothing = run("start", cwd=tmp_path)
    assert nothing.returncode == 1 and "no runtimeConfig.start commands" in nothing.stderr
    (tmp_path / "dbos-config.yaml").unlink()
    missing = run("start", cwd=tmp_path)
    assert missing.returncode == 1 and "celery -A" in missing.stderr


def test_init_writes_dbos_config_and_names_what_to_use_for_templates(tmp_path: Path) -> None:
    template = run("init", "my-app", "-t", "dbos-toolbox", cwd=tmp_path)
    assert template.returncode == 1 and "worker/examples/" in template.stderr
    assert "celery-durable demo" in template.stderr
    assert run("init", "Bad Name", "--config", cwd=tmp_path).returncode == 1
    ok("init", "my-app", "--config", cwd=tmp_path)
    written = (tmp_path / "dbos-config.yaml").read_text()
    assert "name: my-app" in written and "${DBOS_SYSTEM_DATABASE_URL}" in written
    found = as_json(
        "workflow", "list", "-l", "1", cwd=tmp_path, env={"DBOS_SYSTEM_DATABASE_URL": DATABASE_URL}
    )
    assert isinstance(found, list)


def test_version_and_rename_application() -> None:
    assert ok("version").startswith("celery-durable CLI version: ")
    renamed = run("rename-application", "-s", DATABASE_URL, "--from", "old", "--to", "new", "-y")
    assert renamed.returncode == 1
    assert "no owning application" in renamed.stderr and "fork" in renamed.stderr
    assert run("rename-application", "-s", DATABASE_URL).returncode == 2  # --to is required


def test_postgres_start_and_stop_the_embedded_server(tmp_path: Path) -> None:
    env = {"CELERY_DURABLE_HOME": str(tmp_path)}
    started = ok("postgres", "start", "--name", "cli-pg", env=env)
    url = started.split("is running: ", 1)[1].splitlines()[0].strip()
    try:
        # The command has returned; the server keeps running.
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert f"schema version {LATEST_VERSION}" in ok("migrate", "-s", url)
    finally:
        stopped = ok("postgres", "stop", "--name", "cli-pg", env=env)
    assert stopped.startswith("Stopped PostgreSQL for cli-pg")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    assert "is not running" in ok("postgres", "stop", "--name", "cli-pg", env=env)
