"""Broker restarts: a worker survives them, and no workflow is lost.

Each test restarts a broker of its own (tests/integration/private_brokers.py), never the machine's.

Redis: kombu (5.4.2 to 5.7.0) stops a worker that holds unacknowledged messages when
the connection drops (docs/kombu-redis-restart.md); ``celery_durable.integration
.kombu_redis`` works around it, and these tests pin the kombu behaviour it relies on.

RabbitMQ: Celery (5.4.0 to 5.7.0) makes a threads worker's pool threads send
``basic.qos`` on the consumer's connection after a reconnection, and the worker stops
consuming and ignores SIGTERM (docs/celery-threads-reconnect.md);
``celery_durable.integration.celery_prefetch`` works around it.
"""

from __future__ import annotations

import re
import runpy
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celery_durable.integration import celery_prefetch, kombu_redis
from tests.integration.private_brokers import PrivateRabbitMQ, PrivateRedis
from tests.integration.subprocesses import ROOT
from tests.integration.test_faults import Faults, Worker, create_fault_database, wait_until

REPRODUCTION = ROOT / "docs" / "kombu_redis_restart_repro.py"
THREADS_REPRODUCTION = ROOT / "docs" / "celery_threads_reconnect_repro.py"
BUG = "AttributeError: 'NoneType' object has no attribute 'hostname'"


@pytest.fixture
def fault_database() -> str:
    return create_fault_database()


@pytest.fixture
def restartable_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def restartable_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    server = PrivateRabbitMQ()
    try:
        yield server
    finally:
        server.close()


def wait_alive(worker: Worker, faults: Faults, predicate: Any, timeout: float, what: str) -> None:
    """Waits for ``predicate``; fails at once, with the log, if the worker exits."""

    def done() -> bool:
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{faults.worker_log()[-4000:]}")
        return bool(predicate())

    wait_until(done, timeout, what)


def finished(faults: Faults, handles: list[Any]) -> bool:
    """Whether every workflow succeeded (the fault database holds only this test's)."""
    return len(faults.client.list_workflows(status="SUCCESS")) == len(handles)


# -- the kombu behaviour the workaround relies on --------------------------------------


def test_the_installed_kombu_has_the_bug_the_workaround_covers() -> None:
    """Fails when a kombu upgrade fixes or changes the bug: then check the workaround
    against the new version and change ``kombu_redis.COVERED`` (or remove it)."""
    version = kombu_redis.kombu_version()
    assert kombu_redis.covers(version), (
        f"kombu {version} is outside the versions the Redis restart workaround was "
        f"verified on ({kombu_redis.COVERED}): run {REPRODUCTION.name} against it"
    )
    # The standalone reproduction, in an interpreter without celery_durable.
    run = subprocess.run(
        [sys.executable, str(REPRODUCTION)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert BUG in run.stderr, run.stderr
    # Where the workaround intervenes: the pool built after the transport was closed.
    assert "in _get_pool" in run.stderr and "in _connparams" in run.stderr, run.stderr


def test_the_workaround_restores_the_held_message_once_redis_is_back(tmp_path: Path) -> None:
    """The same sequence with the workaround: the channel closed after its transport
    restores its unacknowledged message to the queue (Redis kept its data here)."""
    assert kombu_redis.install()
    reproduction = runpy.run_path(str(REPRODUCTION))
    server = PrivateRedis(persistent=True)
    try:
        reproduction["reproduce"](server.port, before_close=server.start)
        client = server.client()
        assert client.llen("tasks") == 1
        assert client.hlen("unacked") == 0
    finally:
        server.close()


# -- Redis: a worker holding countdowns ------------------------------------------------


# Workers with Celery's event loop (prefork, threads, solo) die without the workaround;
# gevent's loop has no BRPOP in flight between reads, and survives.
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_holding_countdowns_survives_a_redis_restart(
    fault_database: str, restartable_redis: PrivateRedis, pool: str, tmp_path: Path
) -> None:
    faults = Faults(restartable_redis.url(), tmp_path, pool)
    try:
        worker = faults.start_worker(
            beat=False, CD_FAULT_BACKOFF_SECONDS="4", CD_FAULT_SLEEP_SECONDS="4"
        )
        backoffs = [faults.enqueue("with_backoff") for _ in range(4)]
        sleepers = [faults.enqueue("survives", "sleep") for _ in range(2)]
        waiting = backoffs + sleepers
        # Every workflow waits (a step's backoff, a durable sleep) for a countdown the
        # worker holds unacknowledged.
        wait_alive(
            worker,
            faults,
            lambda: restartable_redis.client().hlen("unacked") == len(waiting),
            30,
            "the worker to hold every workflow's countdown",
        )
        # And a step runs across the restart: its message is acknowledged afterwards,
        # on the channel of the connection that was lost.
        faults.add_trigger("occupant", "hold")
        occupant = faults.enqueue("gated_occupant")
        wait_alive(worker, faults, lambda: faults.effects(occupant.workflow_id), 30, "the step")

        restartable_redis.restart()  # SHUTDOWN NOSAVE, started again empty
        wait_alive(
            worker,
            faults,
            lambda: faults.worker_log().count("Connected to redis") == 2,
            30,
            "the worker to reconnect",
        )
        faults.db.execute("DELETE FROM fault_triggers WHERE point = 'occupant'")

        handles = [*waiting, occupant]
        wait_alive(worker, faults, lambda: finished(faults, handles), 60, "every workflow")
        assert worker.process.poll() is None
        log = faults.worker_log()
        assert f"Restoring {len(handles)} unacknowledged message(s)" in log
        assert "Unrecoverable error" not in log
        assert occupant.get_result(timeout=1) == "occupant"
        assert faults.effects(occupant.workflow_id) == Counter({"occupant": 1})
        for handle in waiting:
            assert handle.get_result(timeout=1) == [0, 1, 2]
            assert faults.effects(handle.workflow_id) == Counter(
                {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1}
            )
    finally:
        faults.close()


# -- RabbitMQ: a restart under load ----------------------------------------------------


def test_a_rabbitmq_restart_under_load_loses_and_kills_nothing(
    fault_database: str, restartable_rabbitmq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    faults = Faults(restartable_rabbitmq.url(), tmp_path)
    try:
        worker = faults.start_worker(
            beat=False, CD_FAULT_STEP_SECONDS="0.2", CD_FAULT_BACKOFF_SECONDS="3"
        )
        running = [faults.enqueue("steps", 4) for _ in range(12)]
        backoffs = [faults.enqueue("with_backoff") for _ in range(4)]
        handles = running + backoffs

        def under_load() -> bool:
            return all(faults.effects(h.workflow_id)["1:attempt0"] for h in backoffs) and any(
                faults.effects(h.workflow_id)["0"] for h in running
            )

        wait_alive(worker, faults, under_load, 30, "steps running and backoffs waiting")
        assert not finished(faults, handles)
        restartable_rabbitmq.restart()

        wait_alive(worker, faults, lambda: finished(faults, handles), 60, "every workflow")
        assert worker.process.poll() is None
        assert "Unrecoverable error" not in faults.worker_log()
        for handle in running:
            assert handle.get_result(timeout=1) == 4
            assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 1, "2": 1, "3": 1})
        for handle in backoffs:
            assert handle.get_result(timeout=1) == [0, 1, 2]
            assert faults.effects(handle.workflow_id) == Counter(
                {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1}
            )
    finally:
        faults.close()


# -- RabbitMQ: a threads worker after a reconnection -----------------------------------


def test_the_installed_celery_has_the_bug_the_prefetch_workaround_covers() -> None:
    """Fails when a Celery upgrade fixes or changes the bug: then check the workaround
    against the new version and change ``celery_prefetch.COVERED`` (or remove it)."""
    version = celery_prefetch.celery_version()
    assert celery_prefetch.covers(version), (
        f"Celery {version} is outside the versions the threads-pool reconnection "
        f"workaround was verified on ({celery_prefetch.COVERED}): run "
        f"{THREADS_REPRODUCTION.name} against it"
    )
    # The standalone reproduction (plain Celery, a RabbitMQ node of its own), until a
    # pool thread sends basic.qos: deterministic once the connection is lost mid-task.
    run = subprocess.run(
        [sys.executable, str(THREADS_REPRODUCTION), "--first-sign"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"[1-9][0-9]* by pool threads", run.stdout), run.stdout


def qos_senders(log: str) -> list[tuple[str, int]]:
    """Each ``basic.qos`` the worker sent: (its thread, the prefetch count), in order
    (tests.integration.fault_app's ``CD_FAULT_LOG_QOS``)."""
    found = re.findall(r"basic\.qos from (\S+): basic\.qos: prefetch_count->(\d+)", log)
    return [(thread, int(count)) for thread, count in found]


def test_a_threads_worker_keeps_consuming_after_a_rabbitmq_restart(
    fault_database: str, restartable_rabbitmq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    """RabbitMQ restarted while every thread of a threads worker runs a workflow: the
    worker lowers its prefetch count and restores it as the workflows received on the
    new connection finish, each ``basic.qos`` from the consumer's loop (MainThread),
    never from a pool thread. All workflows succeed, each step once, and a SIGTERM ends
    the worker. Without the workaround the restores come from pool threads (always),
    and the worker sometimes stops consuming and ignores SIGTERM."""
    faults = Faults(restartable_rabbitmq.url(), tmp_path, "threads")
    try:
        worker = faults.start_worker(
            beat=False, concurrency=4, CD_FAULT_STEP_SECONDS="0.5", CD_FAULT_LOG_QOS="1"
        )
        handles = [faults.enqueue("steps", 3) for _ in range(16)]

        def every_thread_busy() -> bool:
            started = [h for h in handles if faults.effects(h.workflow_id)]
            running = [h for h in started if sum(faults.effects(h.workflow_id).values()) < 3]
            return len(running) >= 4

        wait_alive(worker, faults, every_thread_busy, 30, "a workflow on every thread")
        restartable_rabbitmq.restart()
        wait_alive(worker, faults, lambda: finished(faults, handles), 90, "every workflow")

        log = faults.worker_log()
        if "Skipping prefetch count reduction" in log:  # per-consumer QoS (RabbitMQ 4)
            pytest.skip("this broker keeps the prefetch count across a reconnection")
        assert "Temporarily reducing the prefetch count to 1" in log, log[-4000:]
        assert "Prefetch count has been restored to the maximum of 4" in log, log[-4000:]
        senders = qos_senders(log)
        lowered = senders.index(("MainThread", 1))
        restored = [count for _, count in senders[lowered:]]
        assert restored == sorted(restored) and restored[-1] == 4, senders
        assert {thread for thread, _ in senders} == {"MainThread"}, senders

        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"SIGTERM ignored:\n{faults.worker_log()[-4000:]}") from None
        assert "Unrecoverable error" not in faults.worker_log()
        for handle in handles:
            assert handle.get_result(timeout=1) == 3
            assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 1, "2": 1})
    finally:
        faults.close()
