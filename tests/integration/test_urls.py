"""Database URLs: every form PostgreSQL's tools accept works; every bad one is one line."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from celery_durable.error import DBOSInitializationError
from celery_durable.store import SystemStore
from tests.conftest import DATABASE_URL
from tests.integration.subprocesses import free_port

pytestmark = pytest.mark.usefixtures("dbos")

SECRET = "s3cr3t-pw"

BAD_URLS = {
    "no scheme": f"postgres:{SECRET}@127.0.0.1/db",
    "wrong scheme": f"mysql://root:{SECRET}@127.0.0.1/db",
    "port not a number": f"postgresql://root:{SECRET}@127.0.0.1:port/db",
    "unparsable": f"postgresql://root:{SECRET}@[::1/db",
    "bad key=value": f"host=127.0.0.1 password {SECRET}",
    "empty": "",
}


def accepted_forms() -> list[str]:
    """The test database written in each accepted form."""
    url = make_url(DATABASE_URL)
    rest = url.render_as_string(hide_password=False).split("://", 1)[1]
    pairs = [f"host={url.host}", f"dbname={url.database}"]
    pairs += [f"port={url.port}"] if url.port else []
    pairs += [f"user={url.username}"] if url.username else []
    pairs += [f"password='{url.password}'"] if url.password else []
    return [
        f"postgresql://{rest}",
        f"postgres://{rest}",
        f"postgresql+psycopg://{rest}",
        f"POSTGRES://{rest}",
        " ".join(pairs),
    ]


@pytest.mark.parametrize("url", accepted_forms())
def test_every_form_libpq_accepts_reaches_the_database(url: str) -> None:
    store = SystemStore(url, pool_size=1)
    try:
        assert store.url.startswith("postgresql://")
        assert store.schema.migrate() > 0
    finally:
        store.dispose()
    client = DBOSClient(url, "memory://")
    try:
        assert isinstance(client.list_workflows(limit=1), list)
    finally:
        client.destroy()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("url", accepted_forms()[:2])
def test_the_cli_takes_postgres_and_postgresql_urls(url: str) -> None:
    result = cli("workflows", "list", "--database-url", url)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("problem", sorted(BAD_URLS))
def test_a_bad_url_is_one_line_from_the_library(problem: str) -> None:
    with pytest.raises(DBOSInitializationError) as raised:
        SystemStore(BAD_URLS[problem], pool_size=1)
    message = str(raised.value)
    assert "Invalid database URL" in message and "\n" not in message
    assert SECRET not in message
    # No SQLAlchemy or psycopg error chained to it (a traceback would show it).
    error = raised.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_a_url_that_is_not_a_string_is_one_line() -> None:
    with pytest.raises(DBOSInitializationError, match="Invalid database URL: it is a int"):
        SystemStore(5432, pool_size=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("problem", sorted(BAD_URLS))
@pytest.mark.parametrize("command", [("workflows", "list"), ("migrate",)])
def test_a_bad_url_is_one_line_from_the_cli(problem: str, command: Any) -> None:
    result = cli(*command, "--database-url", BAD_URLS[problem])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: --database-url: Invalid database URL: ")
    assert SECRET not in result.stderr + result.stdout


def test_an_unreachable_database_is_one_line_from_the_cli() -> None:
    port = free_port()
    result = cli(
        "workflows", "list", "--database-url", f"postgres://u:{SECRET}@127.0.0.1:{port}/db"
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Connection refused" in lines[0], result.stderr
    assert SECRET not in result.stderr
