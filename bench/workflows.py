"""The Celery app, workflows and plain tasks that every benchmark uses.

Imported by the benchmark process (which configures ``DBOS`` for each benchmark's
database with :func:`configure`) and by the workers (``bench.worker_app``). Step and
workflow names carry a ``bench.`` prefix so they never meet the tests' registrations.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import redis
from celery import Celery

from bench.settings import BROKER_URL, IDLE_QUEUE
from celery_durable import DBOS

app = Celery("celery_durable_bench", broker=BROKER_URL)
app.conf.update(
    task_default_queue=IDLE_QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def synchronous_checkpoints() -> bool:
    """False with ``CD_BENCH_ASYNC_CHECKPOINTS=1``: the opt-in faster mode, measured
    apart (the benchmark process and the workers it starts both read it)."""
    return os.environ.get("CD_BENCH_ASYNC_CHECKPOINTS") != "1"


def configure(database_url: str) -> None:
    """Points ``DBOS`` at a benchmark database and creates its tables."""
    DBOS(
        celery=app,
        config={
            "name": "celery_durable_bench",
            "system_database_url": database_url,
            "synchronous_checkpoints": synchronous_checkpoints(),
        },
    )
    DBOS.launch()


_redis: tuple[int, redis.Redis] | None = None


def broker_redis() -> redis.Redis:
    """A Redis client of this process (a forked worker child opens its own)."""
    global _redis
    if _redis is None or _redis[0] != os.getpid():
        _redis = (os.getpid(), redis.Redis.from_url(BROKER_URL))
    return _redis[1]


# -- per-step overhead, throughput, enqueue -------------------------------------------


def plain_noop(index: int) -> int:
    return index


def plain_ten() -> int:
    return sum(plain_noop(index) for index in range(10))


@DBOS.step(name="bench.noop")
def noop(index: int) -> int:
    return index


@DBOS.workflow(name="bench.ten_steps")
def ten_steps() -> int:
    return sum(noop(index) for index in range(10))


@DBOS.workflow(name="bench.zero_steps")
def zero_steps() -> int:
    return 0


@DBOS.workflow(name="bench.one_step")
def one_step() -> int:
    return noop(0)


@app.task(name="bench.plain_ten_task", ignore_result=True)
def plain_ten_task(counter_key: str, total: int) -> None:
    """The plain Celery baseline: the same ten calls, then one Redis INCR."""
    _ten_calls_then_count(counter_key, total)


def _ten_calls_then_count(counter_key: str, total: int) -> None:
    plain_ten()
    count_done(counter_key, total)


def count_done(counter_key: str, total: int) -> None:
    """Plain tasks have no result; the INCR is the cheapest way to know when a batch
    is done. The first and the last task to finish also record the time."""
    client = broker_redis()
    done = client.incr(counter_key)
    if done == 1:
        client.set(f"{counter_key}:first", repr(time.time()))
    if done == total:
        client.set(f"{counter_key}:last", repr(time.time()))


FLOOR_STATEMENTS = 12  # what a ten-step workflow costs on a worker: claim, 10 steps, outcome
# Connections per process for the floor's INSERTs: one per prefork process (it runs one
# task at a time); at most the library's own pool (5, plus 5 overflow) for threads and
# greenlets, which take turns on them.
FLOOR_CONNECTIONS = 10
# Their application_name: bench.resources leaves them out of a worker's connections.
FLOOR_APPLICATION = "celery_durable_bench floor"


class _FloorConnections:
    """A process's connections for the floor's INSERTs, each used by one task at a time."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._ids = itertools.count((os.getpid() << 32) + 1)

    def _take(self) -> psycopg.Connection[Any]:
        with self._lock:
            open_one = self._idle.empty() and self._opened < FLOOR_CONNECTIONS
            if open_one:
                self._opened += 1
        if open_one:
            return psycopg.connect(self._url, autocommit=True, application_name=FLOOR_APPLICATION)
        return self._idle.get()

    def insert(self, statements: int) -> None:
        """``statements`` autocommit INSERTs with a synchronous commit, as
        :mod:`bench.floor` measures, on one connection."""
        connection = self._take()
        try:
            for _ in range(statements):
                connection.execute(
                    "INSERT INTO bench_floor (id, payload) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (next(self._ids), "42"),
                )
        finally:
            self._idle.put(connection)


_floor: tuple[int, _FloorConnections] | None = None


@app.task(name="bench.floor_ten_task", ignore_result=True)
def floor_ten_task(counter_key: str, total: int) -> None:
    """The ceiling of any ten-step workflow with this budget: plain_ten_task plus the
    twelve synchronous INSERTs of the floor, and nothing else."""
    _process_floor().insert(FLOOR_STATEMENTS)
    _ten_calls_then_count(counter_key, total)


def _process_floor() -> _FloorConnections:
    """This process's floor connections (a forked child opens its own)."""
    global _floor
    if _floor is None or _floor[0] != os.getpid():
        _floor = (os.getpid(), _FloorConnections(os.environ["CD_BENCH_DATABASE_URL"]))
    return _floor[1]


# -- I/O-bound steps and pools (issue 16) ----------------------------------------------

WAIT_SECONDS = 0.02  # an API call's wait; gevent's monkeypatching makes time.sleep yield


@DBOS.step(name="bench.wait_20ms")
def wait_20ms(index: int) -> int:
    time.sleep(WAIT_SECONDS)
    return index


@DBOS.workflow(name="bench.ten_waits")
def ten_waits() -> int:
    return sum(wait_20ms(index) for index in range(10))


@app.task(name="bench.plain_ten_waits_task", ignore_result=True)
def plain_ten_waits_task(counter_key: str, total: int) -> None:
    """The plain Celery side of the I/O-bound comparison: the same ten waits."""
    for _ in range(10):
        time.sleep(WAIT_SECONDS)
    count_done(counter_key, total)


@app.task(name="bench.floor_ten_waits_task", ignore_result=True)
def floor_ten_waits_task(counter_key: str, total: int) -> None:
    """The I/O-bound ceiling: the same ten waits, each followed by one synchronous
    INSERT, with one before them and one after (what any layer that makes each wait
    durable must at least do: a statement per step, a claim and an outcome)."""
    floor = _process_floor()
    floor.insert(1)
    for _ in range(10):
        time.sleep(WAIT_SECONDS)
        floor.insert(1)
    floor.insert(1)
    count_done(counter_key, total)


@DBOS.step(name="bench.wait_200ms")
def wait_200ms() -> None:
    time.sleep(0.2)


@DBOS.workflow(name="bench.one_wait_200ms")
def one_wait_200ms() -> None:
    wait_200ms()


@DBOS.step(name="bench.wait")
def wait(seconds: float) -> None:
    time.sleep(seconds)


@DBOS.workflow(name="bench.one_wait")
def one_wait(seconds: float) -> None:
    """One step that waits ``seconds`` (gevent_overlap: 10 s, for a thousand to be
    claimed and waiting at once)."""
    wait(seconds)


# -- replay ----------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """Stands for a process dying in a step: not an error the workflow records."""


# Workflow ids whose next call of ``crash_once`` crashes (an in-process benchmark).
crash_next: set[str] = set()


@DBOS.step(name="bench.crash_once")
def crash_once() -> str:
    workflow_id = DBOS.workflow_id
    if workflow_id in crash_next:
        crash_next.discard(workflow_id)
        raise SimulatedCrash(workflow_id)
    return "done"


@DBOS.workflow(name="bench.hundred_steps_then_crash_once")
def hundred_steps_then_crash_once() -> str:
    for index in range(100):
        noop(index)
    return crash_once()


# -- retry timing ----------------------------------------------------------------------

RETRY_INTERVALS_MS = (1000, 100)


def retry_workflow_name(interval_ms: int) -> str:
    return f"bench.retry_timing_{interval_ms}ms"


def _retry_workflow(interval_ms: int) -> Callable[[], int]:
    @DBOS.step(
        name=f"bench.fails_three_times_{interval_ms}ms",
        max_attempts=4,
        interval_seconds=interval_ms / 1000,
        backoff_rate=2.0,
    )
    def fails_three_times() -> int:
        status = DBOS.step_status
        assert status is not None and status.current_attempt is not None
        if status.current_attempt < 3:
            raise ConnectionError(f"attempt {status.current_attempt + 1} fails")
        return status.current_attempt + 1

    @DBOS.workflow(name=retry_workflow_name(interval_ms))
    def retry_timing() -> int:
        return fails_three_times()

    return retry_timing


retry_workflows = {interval_ms: _retry_workflow(interval_ms) for interval_ms in RETRY_INTERVALS_MS}


# -- recovery --------------------------------------------------------------------------


def started_key(workflow_id: str) -> str:
    return f"bench:started:{workflow_id}"


@DBOS.step(name="bench.hang_first_time")
def hang_first_time() -> str:
    """Hangs (until the worker is killed) the first time it runs for a workflow."""
    workflow_id = DBOS.workflow_id
    client = broker_redis()
    if client.set(f"bench:hung:{workflow_id}", "1", nx=True):
        client.set(started_key(str(workflow_id)), repr(time.time()))
        time.sleep(600)
    return "resumed"


@DBOS.workflow(name="bench.hangs_once")
def hangs_once() -> str:
    noop(0)
    return hang_first_time()


# -- messaging -------------------------------------------------------------------------

MESSAGE_TOPIC = "bench.ping"
EVENT_TOPIC = "bench.go"
EVENT_KEY = "bench.done"
# Far longer than any sample: a workflow is woken by the send, never by its timeout.
RECV_TIMEOUT_SECONDS = 300


@DBOS.step(name="bench.started_at")
def started_at() -> float:
    """When this step started (epoch seconds): where a wake-up is measured to."""
    return time.time()


@DBOS.workflow(name="bench.recv_then_step")
def recv_then_step() -> dict[str, Any]:
    """Waits in ``recv`` (the worker is free meanwhile), then runs a step."""
    message = DBOS.recv(MESSAGE_TOPIC, timeout_seconds=RECV_TIMEOUT_SECONDS)
    return {"message": message, "started_at": started_at()}


@DBOS.workflow(name="bench.recv_then_set_event")
def recv_then_set_event() -> dict[str, Any]:
    """Waits in ``recv`` (so the benchmark decides when), then sets an event whose value
    is the time just before ``set_event``. That clock read is the benchmark's probe, not
    deterministic workflow code: a replay past it would read another time (nothing
    depends on it)."""
    message = DBOS.recv(EVENT_TOPIC, timeout_seconds=RECV_TIMEOUT_SECONDS)
    set_at = time.time()
    DBOS.set_event(EVENT_KEY, set_at)
    return {"message": message, "set_at": set_at}


# -- existing Celery tasks: a workflow calling ten, against a chain of the same ten ----

TASK_QUEUE = "celery_durable_bench_tasks"


@app.task(name="bench.add_one", ignore_result=True)
def add_one(value: int, work_ms: int = 0) -> int:
    """One task; ``work_ms`` > 0 stands for its work as that long a wait (I/O: a
    request, a query), which holds the worker's slot as real work would."""
    if work_ms:
        time.sleep(work_ms / 1000)
    return value + 1


@app.task(name="bench.add_one_and_count", ignore_result=True)
def add_one_and_count(value: int, counter_key: str, total: int, work_ms: int = 0) -> int:
    """The chain's tenth task: it also counts the chain done."""
    result = add_one(value, work_ms)
    count_done(counter_key, total)
    return result


@DBOS.workflow(name="bench.ten_tasks")
def ten_tasks(work_ms: int = 0) -> int:
    """The same ten tasks as the chain, each a durable call (``DBOS.run_task``)."""
    value = 0
    for _ in range(10):
        value = DBOS.run_task(add_one.s(value, work_ms).set(queue=TASK_QUEUE))
    return value
