"""A worker whose system database does not answer says so in one line and backs off;
when the database answers, it carries on (a real worker subprocess; the database is
reached through a TCP forwarder the test starts late, never by stopping PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BROKER_URL, DATABASE_URL
from tests.integration.subprocesses import CELERY, free_port, spawn, wait_for

pytestmark = pytest.mark.usefixtures("dbos")

PASSWORD = "pw-never-logged"
FAILURE = re.compile(
    r"ERROR/MainProcess\] Cannot connect to the system database (\S+): (.*)\. "
    r"Trying again in (\d+) seconds?\.\.\.$"
)


class Forwarder:
    """Listens on ``port`` and pipes each connection to ``target`` (host, port)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self._target = target
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for end in self._sockets:
            end.close()


def test_an_unreachable_database_is_one_line_with_growing_intervals_then_recovers(
    tmp_path: Path,
) -> None:
    real = make_url(DATABASE_URL)
    port = free_port()
    via_forwarder = real.set(host="127.0.0.1", port=port, password=PASSWORD)
    hostname = f"reach-{uuid.uuid4().hex[:8]}@test"
    env = {
        **os.environ,
        "CELERY_DURABLE_DATABASE_URL": via_forwarder.render_as_string(hide_password=False),
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_IMPORTS": "worker.examples",
    }
    log = tmp_path / "worker.log"
    worker = spawn(
        [
            *CELERY,
            "-A",
            "worker.app",
            "worker",
            "--loglevel=INFO",
            "--pool=threads",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={hostname}",
            f"--queues=reach-{uuid.uuid4().hex[:8]}",
        ],
        env,
        log,
    )
    forwarder = None
    try:

        def failures() -> list[re.Match[str]]:
            lines = worker.output().splitlines()
            return [m for line in lines if (m := FAILURE.search(line)) is not None]

        wait_for(lambda: len(failures()) >= 3, 60, "three failed tries", [worker])
        delays = [int(m.group(3)) for m in failures()]
        assert delays[:3] == [1, 2, 4], worker.output()
        assert all(m.group(1).endswith(f"@127.0.0.1:{port}/{real.database}") for m in failures())
        assert all("Connection refused" in m.group(2) for m in failures())
        output = worker.output()
        # One line each try, nothing else about the database, never the password.
        assert "Timekeeping failed" not in output and "recovery failed" not in output
        assert PASSWORD not in output
        assert all(
            "Cannot connect to the system database" in line
            for line in output.splitlines()
            if "Is the server running" in line
        ), output
        assert "Connected to the system database" not in output

        assert real.host is not None
        forwarder = Forwarder(port, (real.host, real.port or 5432))
        wait_for(
            lambda: "Connected to the system database" in worker.output(),
            60,
            "the worker to reach the database",
            [worker],
        )
        libpq = real.render_as_string(hide_password=False)

        def swept() -> bool:
            with psycopg.connect(libpq, autocommit=True) as connection:
                row = connection.execute(
                    "SELECT 1 FROM celery_durable.worker_versions WHERE executor_id = %s",
                    (hostname,),
                ).fetchone()
            return row is not None

        wait_for(swept, 60, "the worker's first sweep", [worker])
        assert PASSWORD not in worker.output()
    finally:
        worker.stop()
        if forwarder is not None:
            forwarder.close()
