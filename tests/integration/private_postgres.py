"""A PostgreSQL server of a test's own, to restart without disturbing anyone else.

The machine's shared server is never restarted by a test that runs beside others; a
test that needs a restart starts one of these (PostgreSQL's own binaries, a scratch
cluster in a temporary directory, trust authentication on 127.0.0.1, a free port),
and stops it (deleting its data) when done. PostgreSQL refuses to run as root: as
root, its commands run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.servers import system_program
from tests.integration.subprocesses import free_port


def _bin_directory() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        raise AssertionError("PostgreSQL's server binaries are not installed (no initdb)")
    return Path(found[-1])


class PrivatePostgres:
    """A scratch PostgreSQL cluster, started on creation."""

    def __init__(self) -> None:
        self._bin = _bin_directory()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="cd-private-pg-"))
        self._data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "-A", "trust", "--no-sync")
        self._options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        )
        self._pg_ctl("start", "-o", self._options)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def restart(self) -> None:
        """A fast shutdown (every backend says goodbye to its client) and a start."""
        self._pg_ctl("restart", "-m", "fast")

    def halt(self) -> None:
        """Stops the server and keeps its data: it is down until ``resume``."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self) -> None:
        self._pg_ctl("start", "-o", self._options)

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        # The server's output goes to a log file, not to pg_ctl's (a pipe, here).
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(self._data), "-l", log, "-w", "-t", "60", *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = [system_program("runuser"), "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.directory)
