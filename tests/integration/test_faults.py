"""Fault injection: subprocess workers killed, broker messages lost, PostgreSQL restarted.

Each scenario counts side effects in PostgreSQL, outside the workers: every workflow
must reach SUCCESS and every completed step's side effect must have happened once (only
a step interrupted mid-execution may run again).

Workers are prefork unless a scenario is parametrized by pool (``on_pools``; which
pools run which scenario, and why: tests/integration/test_pools.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kombu
import psycopg
import pytest
import redis
from celery import Celery
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient, WorkflowHandleAsync
from celery_durable.error import (
    DBOSSystemDatabaseError,
    DBOSWorkflowMaxRecoveryAttemptsExceededError,
)
from celery_durable.integration.publishing import publish_workflow
from tests.conftest import DATABASE_URL, migrated_database
from tests.integration.subprocesses import CELERY, ROOT, spawn

FAULT_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_faults")
    .render_as_string(hide_password=False)
)
REDIS_URL = os.environ.get("CELERY_DURABLE_TEST_FAULT_REDIS_URL", "redis://127.0.0.1:6379/14")
RABBITMQ_URL = os.environ.get(
    "CELERY_DURABLE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"
)
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Worker:
    """A real ``celery worker`` subprocess (tests.integration.fault_app) in its own process group.

    ``pool``: Celery's ``-P`` (prefork, threads, gevent or solo). Celery refuses an
    embedded beat in a gevent worker, so ``beat`` is ignored there: recovery needs no
    beat (every worker sweeps).
    """

    def __init__(
        self, env: dict[str, str], log: Path, *, beat: bool, concurrency: int, pool: str
    ) -> None:
        command = [
            *CELERY,
            "-A",
            "tests.integration.fault_app",
            "worker",
            "--loglevel=INFO",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=faults-{uuid.uuid4().hex[:8]}@%h",
        ]
        if beat and pool != "gevent":
            command += ["--beat", f"--schedule={log.parent / f'beat-{uuid.uuid4().hex}'}"]
        self._subprocess = spawn(command, env, log)
        self.process = self._subprocess.popen

    def kill(self) -> None:
        """SIGKILL the whole worker (main process, pool children, embedded beat)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self._subprocess.stop()


class Faults:
    """One scenario's database, broker queue, workers (of ``pool``) and client."""

    def __init__(
        self,
        broker_url: str,
        tmp_path: Path,
        pool: str = "prefork",
        database_url: str = FAULT_DATABASE_URL,
    ) -> None:
        self.broker_url = broker_url
        self.database_url = database_url
        self.pool = pool
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.log = tmp_path / "workers.log"
        self.workers: list[Worker] = []
        self.env = {
            **os.environ,
            "CD_FAULT_DATABASE_URL": database_url,
            "CD_FAULT_BROKER_URL": broker_url,
            "CD_FAULT_QUEUE": self.queue,
            "CELERY_DURABLE_DATABASE_URL": database_url,
            "CELERY_DURABLE_BROKER_URL": broker_url,
        }
        self.client = DBOSClient(database_url, broker_url)
        self.db = psycopg.connect(database_url, autocommit=True)

    def start_worker(self, *, beat: bool = True, concurrency: int = 2, **env: str) -> Worker:
        worker = Worker(
            {**self.env, **env}, self.log, beat=beat, concurrency=concurrency, pool=self.pool
        )
        self.workers.append(worker)
        return worker

    def enqueue(self, name: str, *args: Any) -> Any:
        # The worker may not have registered its workflows yet when the test enqueues.
        return self.client.enqueue(
            {"workflow_name": name, "queue_name": self.queue, "allow_unregistered": True}, *args
        )

    def add_trigger(self, point: str, action: str) -> None:
        self.db.execute("INSERT INTO fault_triggers VALUES (%s, %s)", (point, action))

    def effects(self, workflow_id: str) -> Counter[str]:
        rows = self.db.execute(
            "SELECT step FROM fault_effects WHERE workflow_id = %s", (workflow_id,)
        ).fetchall()
        return Counter(row[0] for row in rows)

    def worker_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.client.destroy()
        self.db.close()
        if self.broker_url.startswith("amqp"):
            with kombu.Connection(self.broker_url) as connection:
                channel = connection.channel()
                channel.queue_delete(self.queue)


@pytest.fixture
def fault_database() -> str:
    return create_fault_database()


def create_fault_database(url: str = FAULT_DATABASE_URL) -> str:
    """A fresh, migrated fault database (at ``url``) with the tables of
    tests.integration.fault_app."""
    migrated_database(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE fault_effects (workflow_id text, step text, pid integer, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
        connection.execute("CREATE TABLE fault_triggers (point text PRIMARY KEY, action text)")
        connection.execute("CREATE TABLE fault_payments (id text PRIMARY KEY)")
    return url


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker(request: pytest.FixtureRequest) -> str:
    return BROKERS[request.param]


@pytest.fixture
def pool() -> str:
    """The workers' pool: prefork unless a test is parametrized (``on_pools``)."""
    return "prefork"


def on_pools(*pools: str) -> pytest.MarkDecorator:
    """Runs a scenario with prefork workers on Redis and RabbitMQ, as before, and with
    workers of each of ``pools`` on Redis (the pool, not the broker, is what varies)."""
    cases = [("redis", "prefork"), ("rabbitmq", "prefork"), *(("redis", p) for p in pools)]
    return pytest.mark.parametrize(
        ("any_broker", "pool"),
        [pytest.param(BROKERS[broker], pool, id=f"{broker}-{pool}") for broker, pool in cases],
    )


def _faults(broker_url: str, tmp_path: Path, pool: str = "prefork") -> Iterator[Faults]:
    if broker_url.startswith("redis"):
        redis.Redis.from_url(broker_url).flushdb()
    faults = Faults(broker_url, tmp_path, pool)
    try:
        yield faults
    finally:
        faults.close()


@pytest.fixture
def faults(fault_database: str, any_broker: str, pool: str, tmp_path: Path) -> Iterator[Faults]:
    yield from _faults(any_broker, tmp_path, pool)


@pytest.fixture
def redis_faults(fault_database: str, tmp_path: Path) -> Iterator[Faults]:
    yield from _faults(REDIS_URL, tmp_path)


# -- killed workers --------------------------------------------------------------------


@on_pools("threads", "solo")
def test_sigkill_while_a_step_runs(faults: Faults) -> None:
    faults.add_trigger("after-effect:1", "kill-worker")
    first = faults.start_worker()
    handle = faults.enqueue("steps", 3)
    first.process.wait(timeout=60)  # the step killed its own worker
    faults.start_worker()
    assert handle.get_result(timeout=60) == 3
    # Step 1 was interrupted after its side effect, before its checkpoint: it ran again.
    assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 2, "2": 1})


def test_sigkill_right_after_a_checkpoint_commits(faults: Faults) -> None:
    faults.add_trigger("after-checkpoint:0", "kill-worker")
    first = faults.start_worker()
    handle = faults.enqueue("steps", 3)
    first.process.wait(timeout=60)
    faults.start_worker()
    assert handle.get_result(timeout=60) == 3
    assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 1, "2": 1})


def test_sigkill_right_after_a_transaction_commits(faults: Faults) -> None:
    faults.add_trigger("after-commit", "kill-worker")
    first = faults.start_worker()
    handle = faults.enqueue("pays", "p-1")
    first.process.wait(timeout=60)
    faults.start_worker()
    assert handle.get_result(timeout=60) == "p-1"
    assert faults.db.execute("SELECT id FROM fault_payments").fetchall() == [("p-1",)]
    assert faults.effects(handle.workflow_id) == Counter({"record_payment": 1, "1": 1})


@on_pools("gevent")
def test_sigkill_during_backoff_keeps_the_attempt_count(faults: Faults) -> None:
    first = faults.start_worker()
    handle = faults.enqueue("with_backoff")

    def in_backoff() -> bool:
        steps = faults.client.list_workflow_steps(handle.workflow_id)
        return len(steps) == 2 and steps[1]["completed_at_epoch_ms"] is None

    wait_until(in_backoff, 30, "the step's first attempt to fail")
    first.kill()
    faults.start_worker()
    assert handle.get_result(timeout=60) == [0, 1, 2]
    assert faults.effects(handle.workflow_id) == Counter(
        {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1}
    )
    assert faults.client.list_workflow_steps(handle.workflow_id)[1]["attempts"] == 2


# -- lost and duplicated messages ------------------------------------------------------


def test_flushing_redis_loses_messages_and_recovery_finds_them(redis_faults: Faults) -> None:
    faults = redis_faults
    faults.start_worker(beat=False, CD_FAULT_STEP_SECONDS="0.05")
    handles = [faults.enqueue("steps", 3) for _ in range(50)]
    wait_until(
        lambda: len(faults.client.list_workflows(status="SUCCESS")) >= 5, 60, "some to finish"
    )
    redis.Redis.from_url(faults.broker_url).flushdb()  # every queued and scheduled message
    unfinished = 50 - len(faults.client.list_workflows(status="SUCCESS"))
    assert unfinished > 0

    def all_done() -> bool:
        subprocess.run(
            [sys.executable, "-m", "celery_durable.cli", "recover", "--grace", "2"],
            env=faults.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return len(faults.client.list_workflows(status="SUCCESS")) == 50

    wait_until(all_done, 120, "recovery to complete all 50 workflows")
    for handle in handles:
        assert handle.get_result(timeout=5) == 3
        assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 1, "2": 1})


@on_pools("threads", "gevent")
def test_every_message_published_three_times_runs_each_step_once(
    faults: Faults, celery_app: Celery
) -> None:
    # Threads and greenlets: a slot for every copy at once (once its prefetch window is
    # full, a Redis worker of these pools fetches again only after up to 2 s, Celery's
    # synloop). A grace longer than the test: copies waiting in the queue are not lost.
    concurrency = 4 if faults.pool == "prefork" else 32
    faults.start_worker(
        concurrency=concurrency, CD_FAULT_STEP_SECONDS="0.05", CD_FAULT_GRACE_SECONDS="30"
    )
    app = Celery("publisher", broker=faults.broker_url)
    handles = []
    for _ in range(10):
        handles.append(faults.enqueue("steps", 3))
        # Next to the original in the queue: the worker takes the copies at once.
        for _ in range(2):
            publish_workflow(app, "steps", handles[-1].workflow_id, queue=faults.queue)
    for handle in handles:
        assert handle.get_result(timeout=60) == 3
        assert faults.effects(handle.workflow_id) == Counter({"0": 1, "1": 1, "2": 1})


# -- long delays, bad input ------------------------------------------------------------


def test_a_delay_longer_than_the_visibility_timeout_is_parked(redis_faults: Faults) -> None:
    faults = redis_faults
    # Redis holds a countdown for half the visibility timeout (2.5 s) at most.
    faults.start_worker(CD_FAULT_VISIBILITY_TIMEOUT="5", CD_FAULT_BACKOFF_SECONDS="8")
    handle = faults.enqueue("with_backoff")

    def parked() -> bool:
        row = faults.db.execute(
            "SELECT dispatch_parked FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
            (handle.workflow_id,),
        ).fetchone()
        return bool(row and row[0])

    wait_until(parked, 30, "the 8 s backoff to be parked in PostgreSQL")
    assert handle.get_result(timeout=60) == [0, 1, 2]
    assert faults.effects(handle.workflow_id) == Counter(
        {"0": 1, "1:attempt0": 1, "1:attempt1": 1, "2": 1}
    )
    history = faults.client.list_workflow_steps(handle.workflow_id)[1]["attempt_history"]
    waited = (history[1]["started_at_epoch_ms"] - history[0]["completed_at_epoch_ms"]) / 1000
    # Never early; late by at most a sweep interval (1 s) plus a busy machine's slack.
    assert 8.0 <= waited <= 8.0 + 1.0 + 4.0, waited


def test_bad_messages_are_dropped_or_left_visible(redis_faults: Faults) -> None:
    faults = redis_faults
    faults.start_worker(beat=False)
    app = Celery("publisher", broker=faults.broker_url)
    publish_workflow(app, "steps", "no-such-workflow", queue=faults.queue)
    unregistered = faults.enqueue("nobody_registered_this")
    assert faults.enqueue("steps", 1).get_result(timeout=30) == 1
    wait_until(
        lambda: (
            f"Workflow {unregistered.workflow_id} (nobody_registered_this): this worker has no "
            "workflow 'nobody_registered_this'"
            in faults.worker_log()
            and "Workflow no-such-workflow does not exist: message dropped" in faults.worker_log()
        ),
        30,
        "the worker to log both bad messages",
    )
    assert unregistered.get_status().status == "ENQUEUED"
    assert faults.effects("no-such-workflow") == Counter()


def test_a_workflow_whose_worker_always_dies_stops_after_its_recovery_budget(
    redis_faults: Faults,
) -> None:
    faults = redis_faults
    faults.start_worker()
    handle = faults.enqueue("always_dies")  # max_recovery_attempts=2
    with pytest.raises(DBOSWorkflowMaxRecoveryAttemptsExceededError):
        handle.get_result(timeout=90)
    time.sleep(3)  # nothing runs it again: not by redelivery, not by the sweep
    assert faults.effects(handle.workflow_id) == Counter({"execution": 3})
    status = handle.get_status()
    assert status.status == "MAX_RECOVERY_ATTEMPTS_EXCEEDED" and status.recovery_attempts == 3


# -- PostgreSQL restart (last: it disturbs every connection on the machine) -------------


def test_postgresql_restart_while_workflows_run(redis_faults: Faults) -> None:
    faults = redis_faults
    faults.start_worker(CD_FAULT_STEP_SECONDS="0.1")
    handles = [faults.enqueue("steps", 5) for _ in range(10)]
    wait_until(
        lambda: sum(faults.effects(h.workflow_id).total() for h in handles) >= 8,
        60,
        "workflows to be under way",
    )
    finished_before = len(faults.client.list_workflows(status="SUCCESS"))
    assert finished_before < len(handles)  # the restart interrupts work under way
    # Handles already waiting, sync and async, wait the restart out.
    last = handles[-1].workflow_id
    waited: dict[str, Any] = {}
    waiters = [
        threading.Thread(target=_wait_sync, args=(faults.client, last, waited)),
        threading.Thread(target=_wait_async, args=(faults.client, last, waited)),
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster_version(), "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    faults.db = psycopg.connect(FAULT_DATABASE_URL, autocommit=True)
    for handle in handles:
        assert _result_through_outages(handle) == 5
    for waiter in waiters:
        waiter.join(timeout=120)
    assert waited == {"sync": 5, "async": 5}
    duplicated = 0
    for handle in handles:
        counts = faults.effects(handle.workflow_id)
        assert set(counts) == {"0", "1", "2", "3", "4"}
        # Only a step whose checkpoint the restart interrupted may have run twice.
        assert all(n in (1, 2) for n in counts.values()), counts
        duplicated += sum(n - 1 for n in counts.values())
    assert duplicated <= len(handles)


def _wait_sync(client: DBOSClient, workflow_id: str, waited: dict[str, Any]) -> None:
    try:
        waited["sync"] = client.retrieve_workflow(workflow_id).get_result(timeout=120)
    except Exception as error:
        waited["sync"] = error


def _wait_async(client: DBOSClient, workflow_id: str, waited: dict[str, Any]) -> None:
    runtime = client._service.runtime
    handle: WorkflowHandleAsync[int] = WorkflowHandleAsync(
        workflow_id, runtime.process.store, runtime.process.serializer
    )
    try:
        waited["async"] = asyncio.run(handle.get_result(timeout=120))
    except Exception as error:
        waited["async"] = error


def _cluster_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _result_through_outages(handle: Any) -> Any:
    deadline = time.monotonic() + 120
    while True:
        try:
            return handle.get_result(timeout=max(1.0, deadline - time.monotonic()))
        except DBOSSystemDatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
