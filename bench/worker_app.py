"""The workers' app: ``celery -A bench.worker_app worker``, started by ``bench.workers``.

Configured from ``CD_BENCH_DATABASE_URL`` (the benchmark's database),
``CD_BENCH_READY_KEY`` (a Redis key set to the time the worker became ready) and,
optionally, ``CD_BENCH_COUNT_DIR``: each pool process then counts the statements it
sends to the system database and, after every task, writes its running total to a
file of that directory named after its pid (a local write: no round trip is added).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psycopg.waiting
from celery.signals import task_postrun, worker_process_init, worker_ready
from sqlalchemy import event

from bench.workflows import app, broker_redis, synchronous_checkpoints
from celery_durable import DBOS

__all__ = ["app"]

DBOS(
    celery=app,
    config={
        "name": "celery_durable_bench",
        "system_database_url": os.environ["CD_BENCH_DATABASE_URL"],
        "synchronous_checkpoints": synchronous_checkpoints(),
        # A batch's backlog may wait longer than the default 30 s (a slow pool draining
        # thousands): the sweep would publish those workflows again as overdue, and the
        # stale deliveries would cost the worker a claim each (bench.pools counts them).
        "recovery_grace_seconds": 600.0,
    },
)


@worker_ready.connect(weak=False)
def _announce_ready(sender: Any = None, **_: Any) -> None:
    ready_key = os.environ["CD_BENCH_READY_KEY"]
    # Which wait psycopg chose when it was imported: under gevent only a Python one
    # (wait_poll, wait_select) yields to other greenlets; the C one blocks the process.
    broker_redis().set(
        f"{ready_key}:psycopg_wait", getattr(psycopg.waiting.wait, "__name__", "unknown")
    )
    broker_redis().set(ready_key, repr(time.time()))


_COUNT_DIR = os.environ.get("CD_BENCH_COUNT_DIR")
_statements = 0


def _count_statement(*args: Any) -> None:
    global _statements
    _statements += 1


@worker_process_init.connect(weak=False)
def _start_counting(**_: Any) -> None:
    if _COUNT_DIR:
        from bench.counting import stores, system_engines

        for engine in system_engines():
            event.listen(engine, "before_cursor_execute", _count_statement)
        # The per-step checkpoint goes to the driver directly: the store reports it.
        stores().store.connections.statement_listeners.append(_count_statement)


@task_postrun.connect(weak=False)
def _write_count(**_: Any) -> None:
    if _COUNT_DIR:
        (Path(_COUNT_DIR) / str(os.getpid())).write_text(str(_statements))
