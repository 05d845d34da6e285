"""Real ``celery`` subprocesses for the tests, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery"]


def spawn(command: list[str], env: Mapping[str, str], log: Path, cwd: Path = ROOT) -> Process:
    return Process(command, env, log, cwd)


class Process:
    """A subprocess whose output goes to ``log``; ``stop`` ends it and its children."""

    def __init__(self, command: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        with log.open("ab") as output:
            self.popen = subprocess.Popen(
                command,
                env=dict(env),
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM the group (Celery's warm shutdown); SIGKILL if it does not exit."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, processes: list[Process]
) -> None:
    """Waits for ``predicate``; fails at once if one of ``processes`` exits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for process in processes:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.log.name} exited:\n{process.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.log.name}\n{p.output()[-3000:]}" for p in processes)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(0.2)
