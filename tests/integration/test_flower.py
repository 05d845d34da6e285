"""Flower shows step retries: the deployable worker, a real ``celery flower``, its API.

The worker is ``celery -A worker.app worker`` serving ``tests.integration.flower_app``, as the stack
runs it. What Flower can show is fixed by Celery's events (see
docs/_issue6_readme_sections.md): the ``task-retried`` event carries only ``exception``
(``repr`` of the retry's ``exc``, our ``StepRetry``) and ``traceback``; the next
attempt's ``retries`` and ``eta`` arrive with the retry message's ``task-received``
event. Flower keeps one record per task id, so the RETRY state lasts until the next
event about the workflow: the whole wait when the worker had a free prefetch slot for
the retry's message (or the delay is parked), otherwise a moment, after which the row
reads RECEIVED with the reason kept. The test therefore records every distinct state it
sees while polling, and counts RETRY transitions with Flower's own
``flower_events_total{type="task-retried"}`` counter, which is exact.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from tests.conftest import DATABASE_URL, recreate_database
from tests.integration.subprocesses import CELERY, Process, free_port, spawn, wait_for

FLOWER_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_flower")
    .render_as_string(hide_password=False)
)
REDIS_URL = os.environ.get("CELERY_DURABLE_TEST_FLOWER_REDIS_URL", "redis://127.0.0.1:6379/12")
STEP = "charge_payment"
# tests.integration.flower_app's parked delay (not imported: its workflows would register here).
PARKED_DELAY_SECONDS = 2.5
# The settings of worker.app, from the environment; nothing else of ours leaks in.
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("CELERY_DURABLE_")},
    "CELERY_DURABLE_DATABASE_URL": FLOWER_DATABASE_URL,
    "CELERY_DURABLE_BROKER_URL": REDIS_URL,
}


@dataclass(frozen=True)
class Seen:
    """One distinct state of a task as ``/api/task/info`` showed it."""

    state: str
    retries: int | None
    eta: str | None
    exception: str | None
    retried: float | None


class Stack:
    """``celery -A worker.app worker`` serving ``tests.integration.flower_app``, and
    ``celery flower``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.worker_name = f"flower-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.env = {
            **ENV,
            "CELERY_DURABLE_IMPORTS": "tests.integration.flower_app",
            # Between charge_payment's waits (held by the broker) and reserve_stock's
            # (parked in PostgreSQL).
            "CELERY_DURABLE_MAX_BROKER_DELAY_SECONDS": "2",
            "FLOWER_UNAUTHENTICATED_API": "true",
        }
        self.processes: list[Process] = []
        self.client = DBOSClient(FLOWER_DATABASE_URL, REDIS_URL)

    def start(self) -> None:
        # Two pool slots: the worker can take a retry's message while its current one
        # is still unacknowledged (acks_late), as a production worker usually can.
        self.worker = spawn(
            [
                *CELERY,
                "-A",
                "worker.app",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.worker_name}",
            ],
            self.env,
            self.tmp / "worker.log",
        )
        self.processes.append(self.worker)
        self.processes.append(
            spawn(
                [
                    *CELERY,
                    f"--broker={REDIS_URL}",
                    "flower",
                    f"--port={self.port}",
                    "--address=127.0.0.1",
                    "--persistent=false",
                ],
                self.env,
                self.tmp / "flower.log",
                cwd=self.tmp,
            )
        )
        # Flower's metrics mark the worker online once its events reach Flower (its
        # worker-online event, or the next heartbeat): the whole event path works.
        wait_for(
            lambda: self.metric("flower_worker_online", worker=self.worker_name) == 1,
            45,
            "Flower to see the worker",
            self.processes,
        )
        # The worker registers the workflows it serves just after it is ready, and
        # publishes again what was enqueued by a name never served before (the first
        # message then goes stale): enqueue only once it has, or a stale delivery shows.
        wait_for(self.registered, 30, "the worker to register its workflows", self.processes)

    def registered(self) -> bool:
        try:
            with psycopg.connect(FLOWER_DATABASE_URL) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM celery_durable.registered_workflows "
                    "WHERE name IN ('flower_checkout', 'flower_parked_checkout')"
                ).fetchone()
        except psycopg.Error:
            return False  # not migrated yet
        return row is not None and row[0] == 2

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.client.destroy()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-3000:]}" for p in self.processes)

    def get(self, path: str) -> str | None:
        """The body of Flower's answer, or None while it is not listening yet."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return str(r.read().decode())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        except OSError:
            return None

    def task_info(self, task_id: str) -> dict[str, Any] | None:
        body = self.get(f"/api/task/info/{task_id}")
        return None if body is None else dict(json.loads(body))

    def metric(self, name: str, **labels: str) -> float:
        """A metric's value summed over the series matching ``labels`` (0 if none)."""
        body = self.get("/metrics") or ""
        total = 0.0
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def retried_events(self, task_name: str) -> float:
        return self.metric("flower_events_total", type="task-retried", task=task_name)

    def watch(self, task_id: str, until: str, timeout: float) -> list[Seen]:
        """Polls the task's info until its state is ``until``; every distinct state seen."""
        seen: list[Seen] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.task_info(task_id)
            if info is not None:
                now = Seen(
                    state=info["state"],
                    retries=info["retries"],
                    eta=info["eta"],
                    exception=info["exception"],
                    retried=info["retried"],
                )
                if not seen or seen[-1] != now:
                    seen.append(now)
                if now.state == until:
                    return seen
            time.sleep(0.02)
        raise AssertionError(f"{task_id} not {until} in {timeout}s; seen {seen}\n{self.logs()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    recreate_database(FLOWER_DATABASE_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    tmp = tmp_path_factory.mktemp("flower")
    migrate = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "migrate"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    stack = Stack(tmp)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


def _reason(attempt: int) -> str:
    """The reason's fixed part; the delay that follows is the time left when the retry
    was sent, so a late worker shows less than the backoff (see _delay_in)."""
    return f"step '{STEP}' attempt {attempt}/5 failed: ConnectionError('timeout'); next attempt in "


def _delay_in(reason: str) -> float:
    match = re.search(r"next attempt in (\d+\.\d)s", reason)
    assert match, reason
    return float(match.group(1))


def _eta_epoch(eta: str) -> float:
    return dt.datetime.fromisoformat(eta).timestamp()


def test_flower_shows_each_step_retry_then_success(stack: Stack) -> None:
    retried_before = stack.retried_events("flower_checkout")
    handle = stack.client.enqueue(
        {"workflow_name": "flower_checkout", "allow_unregistered": True}, "o-1"
    )
    seen = stack.watch(handle.workflow_id, "SUCCESS", timeout=30)
    assert handle.get_result(timeout=5) == "charged o-1"

    # Flower applied exactly two task-retried events to this workflow's task: it went
    # through RETRY twice. The counter is per workflow name (the task name).
    assert stack.retried_events("flower_checkout") - retried_before == 2

    # While each attempt waited, Flower showed its reason (naming the step, the attempt
    # and budget, the error and the delay), the dispatch count and the next attempt's
    # time: the wait reads RETRY or, when the worker reported the retry before it
    # received the retry's message, RECEIVED; both keep the reason.
    for attempt, backoff in ((1, 0.5), (2, 1.0)):
        waits = [
            s
            for s in seen
            if s.exception is not None
            and s.exception.startswith(f"StepRetry: {_reason(attempt)}")
            and s.state in ("RETRY", "RECEIVED")
            and s.retries == attempt
        ]
        assert waits, f"attempt {attempt}'s wait never seen: {seen}"
        wait = waits[0]
        assert wait.exception is not None and wait.eta is not None and wait.retried is not None
        # The delay shown is what was left of the backoff when the retry was sent: never
        # more than the backoff (how much less depends on the machine's load, so no
        # lower bound is asserted). The eta is when the next attempt is due: at most
        # the backoff after the retry event (one clock, the worker's; the event is sent
        # after the retry's message, whose eta it fixed).
        assert _delay_in(wait.exception) <= backoff, wait
        assert _eta_epoch(wait.eta) <= wait.retried + backoff, wait
    # The order of what Flower showed follows the attempts.
    reasons = [s.exception for s in seen if s.exception]
    assert reasons.index(next(r for r in reasons if "attempt 2/5" in r)) > reasons.index(
        next(r for r in reasons if "attempt 1/5" in r)
    )

    info = stack.task_info(handle.workflow_id)
    assert info is not None
    assert info["state"] == "SUCCESS" and info["result"] == "'charged o-1'"
    assert info["name"] == "flower_checkout" and info["worker"] == stack.worker_name
    # Flower keeps only the last retry: its reason stays on the finished task.
    assert info["retries"] == 2 and info["retried"] is not None
    assert _reason(2) in info["exception"]

    # /api/tasks lists the workflow once (task id = workflow id), retries included.
    listed = json.loads(stack.get("/api/tasks?taskname=flower_checkout") or "{}")
    assert list(listed) == [handle.workflow_id]
    assert listed[handle.workflow_id]["state"] == "SUCCESS"

    # The worker's log names the workflow, the step, the attempt and the delay.
    log = stack.worker.output()
    assert f"Workflow {handle.workflow_id} step '{STEP}' attempt 1/5 failed" in log
    assert f"flower_checkout[{handle.workflow_id}] retry: Retry in" in log


def test_flower_shows_a_parked_retry_as_retry_until_it_is_published(stack: Stack) -> None:
    retried_before = stack.retried_events("flower_parked_checkout")
    handle = stack.client.enqueue(
        {"workflow_name": "flower_parked_checkout", "allow_unregistered": True}, "o-2"
    )
    seen = stack.watch(handle.workflow_id, "RETRY", timeout=20)
    reason = (
        "step 'reserve_stock' attempt 1/2 failed: ConnectionError('warehouse offline'); "
        "next attempt in "
    )
    # A parked delay publishes nothing, so no later event replaces RETRY: Flower shows
    # it, with the reason, for the whole wait. It cannot show the due time (no message
    # carries it): eta stays unset.
    retry = seen[-1]
    assert retry.exception is not None and reason in retry.exception
    assert _delay_in(retry.exception) <= PARKED_DELAY_SECONDS
    assert retry.eta is None
    time.sleep(1.0)
    still = stack.task_info(handle.workflow_id)
    assert still is not None and still["state"] == "RETRY"

    # The sweep (here the CLI) publishes the workflow when due; it then succeeds.
    due = (retry.retried or time.time()) + PARKED_DELAY_SECONDS
    time.sleep(max(0.0, due + 0.1 - time.time()))
    recover = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "recover", "--grace", "30"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recover.returncode == 0, recover.stderr
    assert handle.workflow_id in recover.stdout
    stack.watch(handle.workflow_id, "SUCCESS", timeout=20)
    assert handle.get_result(timeout=5) == "reserved o-2"
    assert stack.retried_events("flower_parked_checkout") - retried_before == 1
