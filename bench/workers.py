"""Celery workers in subprocesses: start, wait until ready, kill the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.settings import ROOT
from bench.workflows import broker_redis


@dataclass(kw_only=True)
class Worker:
    process: subprocess.Popen[bytes]
    hostname: str
    ready_key: str
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_worker(
    *,
    database_url: str,
    queues: list[str],
    log: Path,
    concurrency: int = 2,
    count_dir: Path | None = None,
    pool: str = "prefork",
) -> Worker:
    """Starts ``celery worker --pool=POOL --concurrency=N`` in its own process group.

    Args:
        count_dir: Where the pool processes write their statement counts (see
            ``bench.worker_app``); None: nothing is counted.
        pool: Celery's ``--pool``: prefork, threads, gevent or solo.
    """
    tag = uuid.uuid4().hex[:8]
    hostname = f"bench-{tag}@localhost"
    ready_key = f"bench:ready:{tag}"
    env = {**os.environ, "CD_BENCH_DATABASE_URL": database_url, "CD_BENCH_READY_KEY": ready_key}
    if count_dir is not None:
        count_dir.mkdir(parents=True, exist_ok=True)
        env["CD_BENCH_COUNT_DIR"] = str(count_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.worker_app",
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={','.join(queues)}",
                f"--hostname={hostname}",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process=process, hostname=hostname, ready_key=ready_key, log=log)


def counted_statements(count_dir: Path) -> int:
    """The statements counted so far by the pool processes writing to ``count_dir``."""
    return sum(int(path.read_text() or 0) for path in count_dir.iterdir())


def wait_ready(worker: Worker, timeout: float = 60.0) -> float:
    """Waits for the worker's ``worker_ready``; returns when it fired (epoch seconds)."""
    deadline = time.monotonic() + timeout
    client = broker_redis()
    while time.monotonic() < deadline:
        value = client.get(worker.ready_key)
        if value is not None:
            return float(value)
        if worker.process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {worker.process.returncode}:\n{worker.log_tail()}"
            )
        time.sleep(0.02)
    raise TimeoutError(f"worker not ready after {timeout}s:\n{worker.log_tail()}")


def kill_worker(worker: Worker) -> None:
    """SIGKILLs the worker's whole process group (main process and pool children)."""
    if worker.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
