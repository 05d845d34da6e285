"""Every Celery pool runs durable workflows: prefork, threads, gevent and solo.

The fault scenarios of tests/integration/test_faults.py run with prefork workers on Redis and
RabbitMQ; each other pool runs them (``on_pools``) where it takes a path of its own:

- SIGKILL during a step, on threads and solo: the fence is the main process's, shared
  by its executions (threads) or used from the consumer's own thread (solo), not a
  pool child's; the kill takes it down with the consumer.
- SIGKILL during backoff, on gevent: the countdown of the next attempt is held by the
  gevent pool's own timer (prefork: the event loop's; threads and solo: a timer
  thread, which the retry schedule below exercises), the retry published from a
  greenlet.
- Duplicate delivery, on threads and gevent: copies of one message reach the same
  process at once, where the fence's set of held workflows makes the second ``busy``
  (prefork's copies meet in PostgreSQL; solo runs one message at a time).

Here, one real ``celery -A tests.integration.fault_app worker -P <pool>`` per pool serves:

- the retry schedule: a step's attempts spaced by its backoff, counted in PostgreSQL
  (the countdown is held by each pool's own timer; the retry is published from a
  child process, a thread, a greenlet or the consumer itself);
- ``async def`` workflows, three at once: each runs in an event loop of its own in the
  thread (greenlet) that executes it;
- under gevent: psycopg's waits yield to other greenlets, and 50 steps sleeping
  200 ms overlap on one worker (from the steps' recorded start and end, not a clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
import redis

from bench.gevent_overlap import most_at_once
from tests.integration.test_faults import (
    FAULT_DATABASE_URL,
    REDIS_URL,
    Faults,
    create_fault_database,
)
from tests.integration.test_faults import wait_until as _wait_until

POOLS = ["prefork", "threads", "gevent", "solo"]
CONCURRENCY = {"prefork": 2, "threads": 8, "gevent": 200, "solo": 1}
RESULT_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def pool_database() -> str:
    return create_fault_database()


@pytest.fixture(scope="module", params=POOLS)
def pooled(
    request: pytest.FixtureRequest, pool_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Faults]:
    """A worker of the pool, ready, on a queue of its own."""
    pool: str = request.param
    redis.Redis.from_url(REDIS_URL).flushdb()
    faults = Faults(REDIS_URL, tmp_path_factory.mktemp(pool), pool)
    try:
        worker = faults.start_worker(beat=False, concurrency=CONCURRENCY[pool])
        _wait_until(
            lambda: " ready." in faults.worker_log() or worker.process.poll() is not None,
            RESULT_TIMEOUT,
            f"the {pool} worker to be ready",
        )
        assert worker.process.poll() is None, faults.worker_log()[-3000:]
        yield faults
    finally:
        faults.close()


def test_a_steps_attempts_are_spaced_by_its_backoff(pooled: Faults) -> None:
    handle = pooled.enqueue("retries_on_schedule")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "third time"
    assert pooled.effects(handle.workflow_id) == Counter(
        {"attempt0": 1, "attempt1": 1, "attempt2": 1}
    )
    (step,) = pooled.client.list_workflow_steps(handle.workflow_id)
    assert step["attempts"] == 3
    history = step["attempt_history"]
    waited = [
        (later["started_at_epoch_ms"] - earlier["completed_at_epoch_ms"]) / 1000
        for earlier, later in pairwise(history)
    ]
    # fault_pools.fails_twice: interval 0.5 s, backoff rate 2. Never early (the due time
    # is taken after the failure's end); how late is the pool's and the machine's.
    backoff = [0.5, 1.0]
    assert len(waited) == 2 and all(w >= b for w, b in zip(waited, backoff, strict=True)), waited


def test_async_workflows_run_each_in_a_loop_of_its_own(pooled: Faults) -> None:
    # Three at once: under threads and gevent they execute concurrently in one process.
    handles = [pooled.enqueue("async_steps") for _ in range(3)]
    for handle in handles:
        assert handle.get_result(timeout=RESULT_TIMEOUT) == [0, 1]
        assert pooled.effects(handle.workflow_id) == Counter({"0": 1, "1": 1})


@pytest.mark.parametrize("pooled", ["gevent"], indirect=True)
def test_postgresql_waits_yield_to_other_greenlets_under_gevent(pooled: Faults) -> None:
    faults = pooled
    # psycopg was imported after Celery's monkeypatching: it chose a Python wait
    # function, through gevent's select, not the C one that blocks the thread.
    assert faults.enqueue("psycopg_wait_function").get_result(timeout=RESULT_TIMEOUT) != "wait_c"
    faults.add_trigger("occupant", "hold")
    stuck = faults.enqueue("gated_occupant")
    _wait_until(
        lambda: faults.effects(stuck.workflow_id)["occupant"] == 1, RESULT_TIMEOUT, "the step"
    )
    with psycopg.connect(FAULT_DATABASE_URL) as locker:
        # The workflow's row locked: its step's checkpoint (FOR SHARE) waits in PostgreSQL.
        locker.execute(
            "SELECT 1 FROM celery_durable.workflow_status WHERE workflow_uuid = %s FOR UPDATE",
            (stuck.workflow_id,),
        )
        faults.db.execute("DELETE FROM fault_triggers WHERE point = 'occupant'")
        _wait_until(
            lambda: _blocked_by(faults, locker.info.backend_pid) == 1,
            RESULT_TIMEOUT,
            "the checkpoint to wait for the row lock",
        )
        # The worker's one OS thread is in that wait: another workflow runs only if the
        # wait yields to other greenlets.
        assert faults.enqueue("steps", 2).get_result(timeout=RESULT_TIMEOUT) == 2
        assert _blocked_by(faults, locker.info.backend_pid) == 1
    assert stuck.get_result(timeout=RESULT_TIMEOUT) == "occupant"
    assert faults.effects(stuck.workflow_id) == Counter({"occupant": 1})


def _blocked_by(faults: Faults, backend_pid: int) -> int:
    row = faults.db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
        (backend_pid,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_fifty_200ms_steps_overlap_on_one_gevent_worker(pool_database: str, tmp_path: Path) -> None:
    faults = Faults(REDIS_URL, tmp_path, "gevent")
    try:
        # All enqueued first, so that the worker finds them waiting.
        handles = [faults.enqueue("occupy", 0.2) for _ in range(50)]
        faults.start_worker(beat=False, concurrency=200)
        for handle in handles:
            assert handle.get_result(timeout=RESULT_TIMEOUT) == handle.workflow_id
        rows = faults.db.execute(
            "SELECT o.started_at_epoch_ms, o.completed_at_epoch_ms "
            "FROM celery_durable.operation_outputs o "
            "JOIN celery_durable.workflow_status w USING (workflow_uuid) "
            "WHERE w.queue_name = %s",
            (faults.queue,),
        ).fetchall()
    finally:
        faults.close()
    assert len(rows) == 50
    # One after another, one step would run at any instant; with a connection held per
    # execution (the fencing before 6397cfb), 10 did (docs/performance.md). Not all 50:
    # the claims take turns on the process's one fence connection (~4 ms each on a busy
    # 2-core machine, where the peak measured 35 to 41), so the bound leaves room.
    assert most_at_once(rows) >= 25, most_at_once(rows)
