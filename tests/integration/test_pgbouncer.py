"""Workers behind PgBouncer in transaction mode.

Debian's PgBouncer (installed on first use by ``deploy/install-test-pgbouncer.sh``) runs in front of
the fault database in transaction mode. A real worker subprocess is configured with
``system_database_url`` pointing at PgBouncer and ``session_database_url`` at
PostgreSQL: its statements (checkpoints, claims' neighbours, sweeps, messages) go
through the pooler, only the fence and LISTEN connect directly. Steps run exactly once,
retries keep their schedule, a killed worker is recovered, and PgBouncer's own counters
show the traffic went through it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from celery_durable.store import SystemStore
from tests.integration.prerequisites import PGBOUNCER as PGBOUNCER_PATH
from tests.integration.prerequisites import ensure_pgbouncer
from tests.integration.subprocesses import free_port
from tests.integration.test_faults import (
    FAULT_DATABASE_URL,
    Faults,
    _faults,
    fault_database,
    wait_until,
)
from tests.integration.test_recovery import FAST, REDIS_URL, RESULT_TIMEOUT

__all__ = ["fault_database"]  # a fixture used below

PGBOUNCER = str(PGBOUNCER_PATH)


class PgBouncer:
    """A PgBouncer process in transaction mode in front of the local PostgreSQL."""

    def __init__(self) -> None:
        ensure_pgbouncer()  # installed on first use (deploy/install-test-pgbouncer.sh)
        # PgBouncer refuses to run as root: it drops to "postgres", which must read
        # its files (pytest's tmp_path is private to root).
        self.directory = Path(tempfile.mkdtemp(prefix="cd-pgbouncer-"))
        self.directory.chmod(0o777)
        self.port = free_port()
        config = self.directory / "pgbouncer.ini"
        (self.directory / "users.txt").write_text('"postgres" ""\n')
        config.write_text(
            "[databases]\n"
            "* = host=127.0.0.1 port=5432\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'users.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
            "admin_users = postgres\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
            f"pidfile = {self.directory / 'pgbouncer.pid'}\n"
        )
        for path in self.directory.iterdir():
            path.chmod(0o666)
        command = [PGBOUNCER, str(config)]
        if os.getuid() == 0:
            command[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._accepts, 30, "PgBouncer to accept connections")

    def url(self, database_url: str) -> str:
        return make_url(database_url).set(port=self.port).render_as_string(hide_password=False)

    def _accepts(self) -> bool:
        assert self.process.poll() is None, self.log()
        return self.admin("SHOW VERSION") != ""

    def admin(self, command: str) -> str:
        """A command of PgBouncer's console (simple query protocol: psql)."""
        result = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-At",
                "-F,",
                "-d",
                "pgbouncer",
                "-c",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout if result.returncode == 0 else ""

    def transactions(self, database: str) -> int:
        """How many transactions PgBouncer passed on to ``database``."""
        for row in self.admin("SHOW STATS").splitlines():  # no header (psql -t)
            fields = row.split(",")
            if fields[0] == database:
                return int(fields[1])
        return 0

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    running = PgBouncer()
    yield running
    running.stop()


@pytest.fixture
def behind_bouncer(fault_database: str, bouncer: PgBouncer, tmp_path: Path) -> Iterator[Faults]:
    for faults in _faults(REDIS_URL, tmp_path):
        faults.env["CD_FAULT_DATABASE_URL"] = bouncer.url(FAULT_DATABASE_URL)
        faults.env["CD_FAULT_SESSION_DATABASE_URL"] = FAULT_DATABASE_URL
        yield faults


def test_a_worker_behind_pgbouncer_in_transaction_mode(
    behind_bouncer: Faults, bouncer: PgBouncer
) -> None:
    faults = behind_bouncer
    database = make_url(FAULT_DATABASE_URL).database
    assert database is not None
    before = bouncer.transactions(database)
    # Step 1's side effect kills the worker once, before its checkpoint.
    faults.add_trigger("after-effect:1", "kill-worker")
    first = faults.start_worker(beat=False, **FAST)
    killed = faults.enqueue("steps", 3)
    first.process.wait(timeout=60)
    faults.start_worker(beat=False, **FAST)
    assert killed.get_result(timeout=RESULT_TIMEOUT) == 3
    assert faults.effects(killed.workflow_id) == Counter({"0": 1, "1": 2, "2": 1})

    # A retried step keeps its schedule, and a message wakes a waiting workflow.
    backoff = faults.enqueue("with_backoff")
    receiver = faults.enqueue("receives", 1)
    wait_until(
        lambda: (
            "DBOS.sleep"
            in [s["function_name"] for s in faults.client.list_workflow_steps(receiver.workflow_id)]
        ),
        RESULT_TIMEOUT,
        "the receiver to wait",
    )
    faults.client.send(receiver.workflow_id, "paid", "pay")
    assert backoff.get_result(timeout=RESULT_TIMEOUT) == [0, 1, 2]
    assert receiver.get_result(timeout=RESULT_TIMEOUT) == ["paid"]
    attempts = [
        s["attempts"]
        for s in faults.client.list_workflow_steps(backoff.workflow_id)
        if s["function_name"].endswith("fails_first_attempt")
    ]
    assert attempts == [2]

    # The workers' statements went through PgBouncer (dozens of transactions), and its
    # log shows no failed prepared statement.
    time.sleep(1)  # its counters are updated every second
    assert bouncer.transactions(database) - before >= 20
    assert "prepared statement" not in bouncer.log()


def test_behind_a_pooler_no_statement_is_prepared_on_the_server(
    fault_database: str, bouncer: PgBouncer
) -> None:
    # psycopg prepares a statement on its fifth execution; through a transaction-mode
    # pooler the next transaction may reach a server session without it.
    pooled = SystemStore(bouncer.url(FAULT_DATABASE_URL), session_url=FAULT_DATABASE_URL)
    direct = SystemStore(FAULT_DATABASE_URL)
    try:
        for store, expected in ((pooled, None), (direct, 5)):
            with store.connections.engine.connect() as connection:
                driver = connection.connection.driver_connection
                assert driver is not None
                assert driver.prepare_threshold == expected
            # The connections that executions borrow for their checkpoints.
            with store.connections.statements.cursor(lambda: "testing") as cursor:
                assert cursor.connection.prepare_threshold == expected
        assert pooled.connections.session_url == FAULT_DATABASE_URL
    finally:
        pooled.dispose()
        direct.dispose()
