"""Existing Celery tasks called durably from workflows (``DBOS.run_task``/``start_task``).

Two real worker subprocesses: a plain one (``tests.integration.plain_tasks_app``, which
imports nothing of celery_durable) on its own queue, and a workflow worker
(``tests.integration.task_workflows_app``). Neither app has a result backend: every
outcome is checkpointed in PostgreSQL by our callbacks.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from tests.conftest import BROKER_URL, DATABASE_URL, migrated_database
from tests.integration.private_brokers import PrivateRedis
from tests.integration.subprocesses import CELERY, Process, spawn

TASKS_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_tasks")
    .render_as_string(hide_password=False)
)


class Cluster:
    """A plain-task worker, a workflow worker (either restartable) and a client."""

    def __init__(self, tmp_path: Path, broker_url: str = BROKER_URL, **env: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.directory = tmp_path
        self.log = tmp_path / "workers.log"
        self.env = {
            **os.environ,
            "PLAIN_BROKER_URL": broker_url,
            "PLAIN_QUEUE": f"plain-{suffix}",
            "PLAIN_DIR": str(tmp_path),
            "TASKS_BROKER_URL": broker_url,
            "TASKS_WORKFLOW_QUEUE": f"workflows-{suffix}",
            "TASKS_DATABASE_URL": TASKS_DATABASE_URL,
            **env,
        }
        self.processes: list[Process] = []
        self.plain = self.start("tests.integration.plain_tasks_app", "plain")
        self.workflows = self.start("tests.integration.task_workflows_app", "workflows")
        self.client = DBOSClient(TASKS_DATABASE_URL, broker_url)

    def start(self, module: str, name: str, concurrency: int = 2) -> Process:
        command = [
            *CELERY, "-A", module, "worker", "--loglevel=INFO", f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h",
        ]  # fmt: skip
        process = spawn(command, self.env, self.log)
        self.processes.append(process)
        return process

    def enqueue(self, name: str, *args: Any) -> Any:
        options = {
            "workflow_name": name,
            "queue_name": self.env["TASKS_WORKFLOW_QUEUE"],
            "allow_unregistered": True,
        }
        return self.client.enqueue(options, *args)  # type: ignore[arg-type]

    def runs(self) -> list[str]:
        path = self.directory / "runs"
        return path.read_text().splitlines() if path.exists() else []

    def executions(self, workflow_id: str) -> list[str]:
        """The names of the tasks the workflow worker executed for ``workflow_id``."""
        path = self.directory / "executions"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.split()[0] for line in lines if repr(workflow_id) in line]

    def steps(self, workflow_id: str) -> list[dict[str, Any]]:
        return self.client.list_workflow_steps(workflow_id)

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.client.destroy()


@pytest.fixture(scope="module")
def tasks_database() -> str:
    return migrated_database(TASKS_DATABASE_URL)


@pytest.fixture
def cluster(tasks_database: str, tmp_path: Path) -> Iterator[Cluster]:
    redis.Redis.from_url(BROKER_URL).flushdb()
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(cluster.log.read_text(errors="replace"))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def test_a_task_result_is_checkpointed_without_a_result_backend(cluster: Cluster) -> None:
    handle = cluster.enqueue("adds", 2, 3)
    assert handle.get_result() == 6
    steps = cluster.steps(handle.workflow_id)
    assert [step["function_name"] for step in steps] == ["plain.add", "plain.add"]
    assert [step["output"] for step in steps] == [5, 6]
    assert [step["task_id"] for step in steps] == [
        f"{handle.workflow_id}:task:1:1",
        f"{handle.workflow_id}:task:2:1",
    ]
    assert [step["child_workflow_id"] for step in steps] == [None, None]
    # Each call ran once, under its deterministic task id.
    assert sorted(line.split()[0] for line in cluster.runs()) == [
        f"{handle.workflow_id}:task:1:1",
        f"{handle.workflow_id}:task:2:1",
    ]


def test_a_callback_continues_the_workflow_without_a_message_of_its_own(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("adds", 2, 3)
    assert handle.get_result() == 6
    # Each callback recorded its task's result and ran the workflow on (to its next
    # call, then to its end) in the same task: the workflow's message ran once (twice if
    # the first task ended before that run had parked: it then runs again at once).
    executions = cluster.executions(handle.workflow_id)
    assert executions.count("celery_durable.task_succeeded") == 2
    assert executions.count("adds") in (1, 2)


def test_a_delivery_that_parks_on_a_task_ends_without_a_celery_retry(cluster: Cluster) -> None:
    """The workflow's message parks it until the task's callback: the delivery returns
    (a Celery retry would pickle a traceback to the pool's parent, and nothing runs it)."""
    # A task of two seconds: the workflow has parked before it ends (one that ended
    # first would wake the workflow while it runs, whose delivery then goes on at once).
    handle = cluster.enqueue("slow_without_timeout", "parks", 2.0)
    assert handle.get_result() == "parks slept"
    retries = cluster.directory / "retries"
    assert not retries.exists(), retries.read_text()
    ends = (cluster.directory / "ends").read_text().splitlines()
    # A delivery superseded before it could claim (the worker, just started, republishes
    # what was enqueued before it served the name: the first message is then stale) is
    # acknowledged and dropped (Ignore); it is not the one that parks.
    delivered = [
        line
        for line in ends
        if line.startswith("slow_without_timeout ")
        and line != "slow_without_timeout IGNORED Ignore()"
    ]
    assert delivered == [
        f"slow_without_timeout SUCCESS 'parked: waiting for task "
        f"plain.slow[{handle.workflow_id}:task:1:1]'"
    ], ends


def test_a_task_of_the_workflow_worker_reports_in_process_without_a_callback_message(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("halves_thrice", 40)
    assert handle.get_result() == 5
    # Its own worker ran each task and, in the same process, recorded the result and
    # continued the workflow: no callback task, and no workflow message after the first
    # (and its retry, if the first task ended before that run had parked).
    executions = cluster.executions(handle.workflow_id)
    assert set(executions) == {"halves_thrice"}
    assert len(executions) in (1, 2)
    steps = cluster.steps(handle.workflow_id)
    assert [(step["output"], step["attempts"]) for step in steps] == [(20, 1), (10, 1), (5, 1)]


def test_a_task_with_a_time_limit_reports_through_its_callback_message(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("halves_within_a_time_limit", 8)
    assert handle.get_result() == 4
    # The workflow would run inside the task's time limit: the callback goes as a
    # message, whose task records the result and runs the workflow on.
    assert "celery_durable.task_succeeded" in cluster.executions(handle.workflow_id)


@pytest.mark.parametrize(
    ("workflow", "args", "result"),
    [("adds", (2, 3), 6), ("halves_thrice", (40,), 5)],
    ids=["callback-task", "in-process"],
)
def test_a_crash_between_recording_an_outcome_and_continuing_loses_nothing(
    tasks_database: str, tmp_path: Path, workflow: str, args: tuple[int, ...], result: int
) -> None:
    """The workflow worker's process dies right after it committed a task's outcome:
    the recovery sweep runs the woken workflow on, and no task is sent twice."""
    redis.Redis.from_url(BROKER_URL).flushdb()
    cluster = Cluster(tmp_path, TASKS_DIE_AFTER_RECORD="1")
    try:
        handle = cluster.enqueue(workflow, *args)
        assert handle.get_result() == result
        assert (tmp_path / "died-after-record").exists()
        steps = cluster.steps(handle.workflow_id)
        assert all(step["attempts"] == 1 for step in steps)
        if workflow == "adds":
            assert sorted(line.split()[0] for line in cluster.runs()) == [
                f"{handle.workflow_id}:task:1:1",
                f"{handle.workflow_id}:task:2:1",
            ]
    finally:
        cluster.close()


def test_async_workflows_start_and_run_tasks(cluster: Cluster) -> None:
    handle = cluster.enqueue("adds_async", 4, 5)
    assert handle.get_result() == 10
    assert len(cluster.runs()) == 2


def test_a_task_failing_twice_then_succeeding_is_retried_with_its_attempts_recorded(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("flaky", "twice", 2, 3)
    assert handle.get_result() == "twice ok after 2 failures"
    (step,) = cluster.steps(handle.workflow_id)
    assert step["attempts"] == 3
    history = step["attempt_history"]
    assert len(history) == 3
    assert [entry["error"] is None for entry in history] == [False, False, True]
    # No result backend: the failed attempts' errors say so, naming the task.
    assert "plain.flaky" in str(history[0]["error"])
    wid = handle.workflow_id
    assert [line.split()[0] for line in cluster.runs()] == [
        f"{wid}:task:1:1",
        f"{wid}:task:1:2",
        f"{wid}:task:1:3",
    ]


def test_exhausted_attempts_raise_max_step_retries_exceeded_which_the_workflow_catches(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("flaky", "always", 9, 2)
    outcome = handle.get_result()
    assert outcome["compensated"] is True
    assert len(outcome["errors"]) == 2
    assert all("plain.flaky" in error for error in outcome["errors"])
    assert len(cluster.runs()) == 2


def test_with_a_result_backend_the_errors_of_failed_attempts_travel(
    tasks_database: str, tmp_path: Path
) -> None:
    backend = BROKER_URL.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(BROKER_URL).flushdb()
    cluster = Cluster(tmp_path, TASKS_RESULT_BACKEND=backend)
    try:
        handle = cluster.enqueue("flaky", "typed", 9, 2)
        outcome = handle.get_result()
    finally:
        cluster.close()
    assert outcome["errors"] == [
        f"DBOS Error: Task plain.flaky[{handle.workflow_id}:task:1:{attempt}] failed: "
        f"ValueError: flaky typed failure {attempt}"
        for attempt in (1, 2)
    ]


def test_a_lost_message_times_out_and_counts_as_a_failed_attempt(cluster: Cluster) -> None:
    handle = cluster.enqueue("lost_message", 1.0)
    errors = handle.get_result()
    assert len(errors) == 2
    assert all("TimeoutError" in error for error in errors)


def test_sigkill_of_the_workflow_worker_while_the_task_runs_dispatches_once(
    cluster: Cluster,
) -> None:
    handle = cluster.enqueue("slow", "k", 5.0)
    wait_until(lambda: (cluster.directory / "started-k").exists(), 30, "the task to start")
    os.killpg(cluster.workflows.popen.pid, signal.SIGKILL)
    cluster.workflows.popen.wait(timeout=30)
    cluster.start("tests.integration.task_workflows_app", "workflows-again")
    # The workflow runs again (from its checkpoints) while the task is still in flight.
    cluster.client.send(handle.workflow_id, "go", "poke")
    assert handle.get_result() == "k slept"
    assert [line.split()[0] for line in cluster.runs()] == [f"{handle.workflow_id}:task:1:1"]


def test_a_hundred_tasks_fan_out_and_in_in_one_workflow(cluster: Cluster) -> None:
    handle = cluster.enqueue("fan_out", 100)
    assert handle.get_result() == [2 * i for i in range(100)]
    runs = cluster.runs()
    assert len(runs) == 100
    assert len({line.split()[0] for line in runs}) == 100


def test_run_task_outside_a_workflow_is_a_clear_error() -> None:
    from celery import Celery

    from celery_durable import DBOS
    from celery_durable.error import DBOSException

    app = Celery("outside")
    with pytest.raises(DBOSException, match="must be called from workflow code"):
        DBOS.run_task(app.signature("plain.add", args=(1, 2)))
    with pytest.raises(DBOSException, match="one task or one task's signature"):
        DBOS.start_task(app.signature("plain.add") | app.signature("plain.add"))  # type: ignore[arg-type]


def test_a_task_of_the_workflow_workers_own_app(cluster: Cluster) -> None:
    assert cluster.enqueue("halves", 8).get_result() == 4
    odd = cluster.enqueue("halves", 7)
    assert odd.get_result() == (
        f"failed: DBOS Error: Task local.halve[{odd.workflow_id}:task:1:1] failed: "
        "its error is not available (the app has no result backend)"
    )


def test_the_server_report_example_gathers_every_outcome(
    tasks_database: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(BROKER_URL).flushdb()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_DATABASE_URL": TASKS_DATABASE_URL,
        "CELERY_DURABLE_IMPORTS": "worker.examples.server_report",
    }
    log = tmp_path / "workers.log"
    common = ["worker", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    workers = [
        spawn([*CELERY, "-A", "worker.ops_tasks", *common, "-Q", "ops", "-n", "ops@%h"], env, log),
        spawn([*CELERY, "-A", "worker.app", *common, "-n", "report@%h"], env, log),
    ]
    client = DBOSClient(TASKS_DATABASE_URL, BROKER_URL)
    try:
        servers = [f"web-{i}" for i in range(38)] + ["db-1-down", "db-2-down"]
        handle = client.enqueue(
            {"workflow_name": "server_report", "allow_unregistered": True}, servers
        )
        report = handle.get_result()
    finally:
        for worker in workers:
            worker.stop()
        client.destroy()
    assert report["answered"] == 38
    assert report["unreachable"] == ["db-1-down", "db-2-down"]
    assert len(report["busiest"]) == 3


def test_a_broker_restart_while_the_task_runs_loses_no_call(
    tasks_database: str, tmp_path: Path
) -> None:
    """Redis restarts empty (no persistence) while the task runs: whatever the broker
    lost, the workflow ends with the task's result, each attempt sent once."""
    broker = PrivateRedis()
    cluster = Cluster(tmp_path, broker.url(15))
    try:
        handle = cluster.enqueue("slow_with_timeout", "b", 3.0, 20.0)
        wait_until(lambda: (cluster.directory / "started-b").exists(), 30, "the task to start")
        broker.restart()
        assert handle.get_result() == "b slept"
        runs = [line.split()[0] for line in cluster.runs()]
        (step,) = cluster.steps(handle.workflow_id)
        # One attempt, or (if the restart lost its callback) one more after the timeout.
        assert runs == [f"{handle.workflow_id}:task:1:{n}" for n in range(1, step["attempts"] + 1)]
    finally:
        cluster.close()
        broker.close()


def _kill_the_plain_worker_while_the_task_runs(cluster: Cluster, key: str) -> None:
    wait_until(lambda: (cluster.directory / f"started-{key}").exists(), 30, "the task to start")
    os.killpg(cluster.plain.popen.pid, signal.SIGKILL)
    cluster.plain.popen.wait(timeout=30)
    cluster.plain = cluster.start("tests.integration.plain_tasks_app", "plain-again")


def test_sigkill_of_a_late_acking_plain_worker_redelivers_the_same_attempt(
    tasks_database: str, tmp_path: Path
) -> None:
    """The plain worker acknowledges late (``task_acks_late``) and dies while the task
    runs: the broker hands the message to the next plain worker, which runs the task
    again under the same task id; its outcome is recorded once, as the one attempt's,
    and no timeout is needed."""
    redis.Redis.from_url(BROKER_URL).flushdb()
    cluster = Cluster(tmp_path, PLAIN_VISIBILITY_TIMEOUT="8")
    try:
        handle = cluster.enqueue("slow_without_timeout", "late", 2.0)
        _kill_the_plain_worker_while_the_task_runs(cluster, "late")
        assert handle.get_result() == "late slept"
        task_id = f"{handle.workflow_id}:task:1:1"
        assert [line.split()[0] for line in cluster.runs()] == [task_id, task_id]
        (step,) = cluster.steps(handle.workflow_id)
        assert (step["attempts"], step["task_id"], step["output"]) == (1, task_id, "late slept")
    finally:
        cluster.close()


def test_sigkill_of_an_early_acking_plain_worker_times_the_attempt_out_and_retries(
    tasks_database: str, tmp_path: Path
) -> None:
    """With Celery's default early acknowledgement the killed worker's message is gone:
    the attempt's timeout counts it failed, and the next attempt (a new task id) runs."""
    redis.Redis.from_url(BROKER_URL).flushdb()
    cluster = Cluster(tmp_path, PLAIN_ACKS_LATE="0")
    try:
        handle = cluster.enqueue("slow_with_timeout", "early", 2.0, 6.0)
        _kill_the_plain_worker_while_the_task_runs(cluster, "early")
        assert handle.get_result() == "early slept"
        wid = handle.workflow_id
        assert [line.split()[0] for line in cluster.runs()] == [
            f"{wid}:task:1:1",
            f"{wid}:task:1:2",
        ]
        (step,) = cluster.steps(wid)
        assert step["attempts"] == 2
        assert "TimeoutError" in str(step["attempt_history"][0]["error"])
    finally:
        cluster.close()
