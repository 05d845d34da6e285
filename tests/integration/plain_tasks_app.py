"""A plain Celery app whose tasks ``DBOS.run_task`` calls in the tests: it imports
nothing of celery_durable (as a user's existing workers do) and has no result backend.

Run as ``celery -A tests.integration.plain_tasks_app worker`` with ``PLAIN_BROKER_URL``,
``PLAIN_QUEUE`` and ``PLAIN_DIR`` (a directory: each task execution appends its task id
to ``runs``, so a test counts dispatches after the workers are gone).
``PLAIN_ACKS_LATE=0`` runs it with Celery's default early acknowledgement, and
``PLAIN_VISIBILITY_TIMEOUT`` (seconds) makes Redis hand an unacknowledged message of a
killed worker to the next one that soon (Celery's default is an hour).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

app = Celery("plain_tasks", broker=os.environ["PLAIN_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["PLAIN_QUEUE"],
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    # Set by one test only: with a result backend, a failed task's error travels.
    result_backend=os.environ.get("TASKS_RESULT_BACKEND") or None,
    task_acks_late=os.environ.get("PLAIN_ACKS_LATE", "1") == "1",
)
if os.environ.get("PLAIN_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        "visibility_timeout": float(os.environ["PLAIN_VISIBILITY_TIMEOUT"]),
        # Look for such messages every second (kombu's default: every 100 s).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
DIRECTORY = Path(os.environ["PLAIN_DIR"])


def _ran(task_id: str | None, marker: str) -> int:
    """Notes one execution; returns how many executions ``marker`` had before."""
    with (DIRECTORY / "runs").open("a") as runs:
        runs.write(f"{task_id} {marker}\n")
    lines = (DIRECTORY / "runs").read_text().splitlines()
    return sum(1 for line in lines if line.endswith(f" {marker}")) - 1


@app.task(name="plain.add", bind=True)
def add(self: Any, x: int, y: int) -> int:
    _ran(self.request.id, f"add-{x}-{y}")
    return x + y


@app.task(name="plain.flaky", bind=True)
def flaky(self: Any, key: str, failures: int) -> str:
    """Fails its first ``failures`` executions for ``key``, then succeeds."""
    before = _ran(self.request.id, f"flaky-{key}")
    if before < failures:
        raise ValueError(f"flaky {key} failure {before + 1}")
    return f"{key} ok after {before} failures"


@app.task(name="plain.slow", bind=True)
def slow(self: Any, key: str, seconds: float) -> str:
    _ran(self.request.id, f"slow-{key}")
    (DIRECTORY / f"started-{key}").touch()
    time.sleep(seconds)
    return f"{key} slept"
