"""The demo never touches a user's servers uninvited, and a server it cannot start is
one line that leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from celery_durable.store import embedded
from tests.conftest import BROKER_URL, DATABASE_URL, recreate_database

USER_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_demo_user")
    .render_as_string(hide_password=False)
)
# The user's broker: a database of the test Redis that nothing else uses.
USER_BROKER_URL = BROKER_URL.rsplit("/", 1)[0] + "/13"


def demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "demo", "--timeout", "90"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_demo_ignores_the_users_servers(tmp_path: Path) -> None:
    recreate_database(USER_DATABASE_URL)
    user_broker = redis.Redis.from_url(USER_BROKER_URL)
    user_broker.flushdb()
    env = {
        **os.environ,
        "CELERY_DURABLE_DATABASE_URL": USER_DATABASE_URL,
        "CELERY_DURABLE_BROKER_URL": USER_BROKER_URL,
        "CELERY_BROKER_URL": USER_BROKER_URL,
        "CELERY_DURABLE_HOME": str(tmp_path),
    }
    result = demo(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Ignoring CELERY_DURABLE_DATABASE_URL, CELERY_DURABLE_BROKER_URL, CELERY_BROKER_URL: "
        "the demo runs on servers of its own" in result.stdout
    )
    assert "SUCCESS -> 'refunded order-2'" in result.stdout
    # Nothing written in the user's database or on the user's broker.
    with psycopg.connect(USER_DATABASE_URL, autocommit=True) as connection:
        schemas = connection.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'celery_durable'"
        ).fetchone()
    assert schemas == (0,)
    assert user_broker.dbsize() == 0


def test_an_embedded_server_that_cannot_start_is_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home" / "celery_durable"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_DURABLE_", "CELERY_BROKER"))
    }
    # initdb refuses a locale that does not exist.
    env |= {"CELERY_DURABLE_HOME": str(home), "LC_ALL": "xx_XX.UTF-8", "LANG": "xx_XX.UTF-8"}
    result = demo(env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: The embedded PostgreSQL did not start (initdb exited with status 1: initdb: "
        "error: invalid locale settings; check LANG and LC_* environment variables): set "
        "system_database_url (the CLI: --database-url) to a PostgreSQL server you run"
    ], result.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs useradd")
def test_as_root_useradd_is_found_without_sbin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("useradd") is None
    with embedded._system_tools_on_path():
        assert shutil.which("useradd") is not None
    assert os.environ["PATH"] == "/usr/bin:/bin"


def test_a_demo_that_times_out_is_one_line_and_leaves_nothing_running(tmp_path: Path) -> None:
    # Invited: the demo runs on this database (and on an embedded broker of its own).
    recreate_database(USER_DATABASE_URL)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_DURABLE_", "CELERY_BROKER"))
    }
    env["CELERY_DURABLE_HOME"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery_durable.cli",
            "demo",
            "--timeout",
            "0.01",
            "--database-url",
            USER_DATABASE_URL,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "Error: The demo workflow flaky_order did not finish within 0.01 s (cancelled it); "
        "the worker's log is above"
    ) in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    with psycopg.connect(USER_DATABASE_URL, autocommit=True) as connection:
        statuses = connection.execute(
            "SELECT name, status FROM celery_durable.workflow_status"
        ).fetchall()
    assert statuses == [("flaky_order", "CANCELLED")]
