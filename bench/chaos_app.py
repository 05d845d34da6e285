"""The workers' app of the chaos run: ``celery -A bench.chaos_app worker``.

Configured from ``CD_CHAOS_*`` environment variables (set by ``bench.chaos``). One
workflow, ``chaos``, uses every durable feature: plain steps, a step that fails its
first attempt (retried after a countdown), a started child whose event it waits for
and whose result it awaits, a child on a concurrency-limited queue, a durable sleep
between two timestamp steps, and three ``recv`` (two messages, each sent twice with
one idempotency key, then a timeout that must find nothing).

Every step body records an execution in ``chaos_effects`` (workflow id, function id,
attempt, the worker's label, pid, start time) and the limited queue's step its
``(started, ended)`` interval in ``chaos_intervals`` (``bench.chaos_checks.TABLES``). They
live in the database that the run restarts: a write reconnects and retries until it
succeeds.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
from celery import Celery

from celery_durable import DBOS, Queue

DATABASE_URL = os.environ["CD_CHAOS_DATABASE_URL"]
BROKER_URL = os.environ["CD_CHAOS_BROKER_URL"]
NODE = os.environ.get("CD_CHAOS_NODE", "worker")
QUEUE = "chaos"
LIMITED_QUEUE = "chaos-limited"
LIMIT = int(os.environ.get("CD_CHAOS_LIMIT", "2"))
STEP_SECONDS = float(os.environ.get("CD_CHAOS_STEP_SECONDS", "0.05"))
HOLD_SECONDS = float(os.environ.get("CD_CHAOS_HOLD_SECONDS", "0.2"))
SLEEP_SECONDS = float(os.environ.get("CD_CHAOS_SLEEP_SECONDS", "2"))
RETRY_SECONDS = float(os.environ.get("CD_CHAOS_RETRY_SECONDS", "1"))
# The last recv must time out (no third message is ever sent).
LAST_RECV_SECONDS = float(os.environ.get("CD_CHAOS_LAST_RECV_SECONDS", "1"))
WAIT_SECONDS = 3600.0

app = Celery("chaos_app", broker=BROKER_URL)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options={"visibility_timeout": 3600},
)
DBOS(
    celery=app,
    config={
        "name": "chaos_app",
        "system_database_url": DATABASE_URL,
        "recovery_interval_seconds": 1.0,
        "recovery_grace_seconds": float(os.environ.get("CD_CHAOS_GRACE_SECONDS", "30")),
        "application_version": "chaos",
    },
)
LIMITED = Queue(LIMITED_QUEUE, concurrency=LIMIT)

_connection: tuple[int, psycopg.Connection[Any]] | None = None


def _execute(sql: str, params: tuple[Any, ...]) -> None:
    """Runs ``sql`` on this process's own connection; across a PostgreSQL restart it
    reconnects and retries (for up to a minute)."""
    global _connection
    for attempt in range(120):
        try:
            if _connection is None or _connection[0] != os.getpid() or _connection[1].closed:
                _connection = (os.getpid(), psycopg.connect(DATABASE_URL, autocommit=True))
            _connection[1].execute(sql, params)
            return
        except psycopg.OperationalError:
            _connection = None
            if attempt == 119:
                raise
            time.sleep(0.5)


def _effect(step: str, started: float) -> None:
    status = DBOS.step_status
    _execute(
        "INSERT INTO chaos_effects (workflow_id, function_id, attempt, step, node, pid, "
        "started) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            DBOS.workflow_id,
            None if status is None else status.step_id,
            None if status is None else status.current_attempt,
            step,
            NODE,
            os.getpid(),
            started,
        ),
    )


@DBOS.step()
def work(name: str) -> str:
    _effect("work", time.time())
    time.sleep(STEP_SECONDS)
    return name


@DBOS.step(max_attempts=4, interval_seconds=RETRY_SECONDS, backoff_rate=1.0)
def flaky() -> str:
    _effect("flaky", time.time())
    status = DBOS.step_status
    if status is not None and status.current_attempt == 0:
        raise ConnectionError("the first attempt fails")
    return "ok"


@DBOS.step()
def stamp() -> float:
    now = time.time()
    _effect("stamp", now)
    return now


@DBOS.step()
def hold(index: int) -> int:
    started = time.time()
    _effect("hold", started)
    time.sleep(HOLD_SECONDS)
    _execute(
        "INSERT INTO chaos_intervals (workflow_id, node, started, ended) VALUES (%s, %s, %s, %s)",
        (DBOS.workflow_id, NODE, started, time.time()),
    )
    return index


@DBOS.step()
def took(messages: list[Any]) -> list[Any]:
    _effect("took", time.time())
    return messages


@DBOS.workflow()
def chaos_child(index: int) -> int:
    work("child")
    DBOS.set_event("half", index * 10)
    return index * 10 + 1


@DBOS.workflow()
def chaos_limited(index: int) -> int:
    return hold(index)


@DBOS.workflow()
def chaos(index: int, steps: int) -> list[Any]:
    done: list[Any] = [work(f"s{number}") for number in range(steps)]
    done.append(flaky())
    child = DBOS.start_workflow(chaos_child, index)
    done.append(DBOS.get_event(child.workflow_id, "half", timeout_seconds=WAIT_SECONDS))
    done.append(child.get_result())
    done.append(LIMITED.enqueue(chaos_limited, index).get_result())
    before = stamp()
    DBOS.sleep(SLEEP_SECONDS)
    DBOS.set_event("slept", stamp() - before)
    messages = [
        DBOS.recv("pay", timeout_seconds=WAIT_SECONDS),
        DBOS.recv("pay", timeout_seconds=WAIT_SECONDS),
        DBOS.recv("pay", timeout_seconds=LAST_RECV_SECONDS),
    ]
    done.append(took(messages))
    return done
