"""The worker of tests/integration/test_canvas.py: durable workflows and plain tasks in
one app, with a Redis result backend (chords need one).

Run as ``celery -A tests.integration.canvas_app worker`` with ``CANVAS_BROKER_URL``,
``CANVAS_BACKEND_URL``, ``CANVAS_DATABASE_URL``, ``CANVAS_QUEUE`` and ``CANVAS_DIR`` (a
directory: each run of a step or a task appends a line to ``runs``, so a test counts
executions and firings after the workers are gone).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

from celery_durable import DBOS

app = Celery(
    "canvas", broker=os.environ["CANVAS_BROKER_URL"], backend=os.environ["CANVAS_BACKEND_URL"]
)
app.conf.update(
    task_default_queue=os.environ["CANVAS_QUEUE"],
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)
DBOS(
    celery=app,
    config={
        "name": "canvas",
        "system_database_url": os.environ["CANVAS_DATABASE_URL"],
        "recovery_interval_seconds": 1.0,
        "recovery_grace_seconds": 2.0,
    },
)
DIRECTORY = Path(os.environ["CANVAS_DIR"])


def ran(marker: str) -> int:
    """Notes one execution of ``marker``; returns how many it had before."""
    with (DIRECTORY / "runs").open("a") as runs:
        runs.write(f"{marker}\n")
    return (DIRECTORY / "runs").read_text().splitlines().count(marker) - 1


@app.task(name="canvas.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="canvas.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.task(name="canvas.record")
def record(value: Any, key: str) -> Any:
    """The last link of a chain: notes each firing."""
    ran(f"fired-{key}-{value}")
    return value


@app.task(name="canvas.record_error")
def record_error(request: Any, exc: Exception, traceback: str, key: str) -> None:
    ran(f"errback-{key}-{type(exc).__name__}")


@DBOS.step()
def doubled(x: int) -> int:
    ran(f"double-{x}")
    return 2 * x


@DBOS.workflow(name="canvas.double")
def double(x: int) -> int:
    return doubled(x)


@DBOS.workflow(name="canvas.tenfold_sum")
def tenfold_sum(values: list[int]) -> int:
    return 10 * sum(values)


@DBOS.step(max_attempts=3, interval_seconds=0.2, backoff_rate=1.0)
def flaky(x: int, key: str) -> int:
    before = ran(f"flaky-{key}")
    if before < 2:
        raise ValueError(f"flaky {key} failure {before + 1}")
    return x + 100


@DBOS.workflow(name="canvas.flaky_plus")
def flaky_plus(x: int, key: str) -> int:
    """Its step fails twice: the workflow's task is retried twice before it ends."""
    return flaky(x, key)


@DBOS.step()
def held(x: int, key: str) -> int:
    """Notes that it started, then waits for the test's ``release-<key>`` file."""
    ran(f"held-{key}")
    deadline = time.monotonic() + 120
    while not (DIRECTORY / f"release-{key}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return x + 1000


@DBOS.workflow(name="canvas.held")
def held_plus(x: int, key: str) -> int:
    first = doubled(x)
    DBOS.sleep(0.2)  # one reschedule before the step that the test holds
    return held(first, key)


@DBOS.workflow(name="canvas.fails")
def fails(x: int) -> int:
    raise ValueError(f"no {x}")


@DBOS.step()
def noted(marker: str) -> None:
    ran(marker)


@DBOS.workflow(name="canvas.waits")
def waits(x: int, key: str) -> int:
    """Waits for a message that never comes (the test cancels it meanwhile)."""
    noted(f"waits-{key}")
    DBOS.recv("go", timeout_seconds=300)
    return x


@DBOS.workflow(name="canvas.held_first")
def held_first(x: int, key: str) -> int:
    """Held in the canvas message's own delivery (no retry before it)."""
    first = held(x, key)
    doubled(x)
    return first + x
