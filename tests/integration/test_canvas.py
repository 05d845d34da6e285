"""Durable workflows inside Celery's canvas: chain, group, chord, ``.delay()``.

A real worker subprocess (``tests.integration.canvas_app``: workflows and plain tasks,
a Redis result backend) and a client app of the test's own that builds the canvases
by task name. Each workflow signature's task id is its workflow id; its callbacks fire
once, when the workflow ends, however many Celery retries (or worker deaths) it took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, chain, chord, group
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from tests.conftest import BROKER_URL, DATABASE_URL, migrate_database, migrated_database
from tests.integration.private_postgres import PrivatePostgres
from tests.integration.subprocesses import CELERY, Process, spawn, wait_for

CANVAS_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_canvas")
    .render_as_string(hide_password=False)
)
# The result backend: the broker's Redis, another database number.
BACKEND_URL = BROKER_URL.rsplit("/", 1)[0] + "/13"
WAIT_SECONDS = 90


class Cluster:
    """A restartable worker subprocess, a Celery client app and a DBOS client."""

    def __init__(self, tmp_path: Path, database_url: str = CANVAS_DATABASE_URL) -> None:
        self.directory = tmp_path
        self.log = tmp_path / "worker.log"
        self.queue = f"canvas-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "CANVAS_BROKER_URL": BROKER_URL,
            "CANVAS_BACKEND_URL": BACKEND_URL,
            "CANVAS_DATABASE_URL": database_url,
            "CANVAS_QUEUE": self.queue,
            "CANVAS_DIR": str(tmp_path),
        }
        self.app = Celery("canvas_client", broker=BROKER_URL, backend=BACKEND_URL)
        self.app.conf.update(task_default_queue=self.queue)
        self.client = DBOSClient(database_url)
        self.worker = self.start()

    def start(self) -> Process:
        command = [
            *CELERY, "-A", "tests.integration.canvas_app", "worker", "--loglevel=INFO",
            "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--hostname=canvas-{uuid.uuid4().hex[:6]}@%h", "-Q", f"{self.queue},{self.queue}-b",
        ]  # fmt: skip
        return spawn(command, self.env, self.log)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes."""
        os.killpg(self.worker.popen.pid, signal.SIGKILL)
        self.worker.popen.wait(timeout=10)

    def sig(self, name: str, *args: Any) -> Any:
        return self.app.signature(name, args=args)

    def runs(self) -> list[str]:
        path = self.directory / "runs"
        return path.read_text().splitlines() if path.exists() else []

    def status(self, workflow_id: str) -> str | None:
        found = self.client.retrieve_workflow(workflow_id).get_status()
        return None if found is None else found.status

    def close(self) -> None:
        self.worker.stop()
        self.client.destroy()
        self.app.close()


@pytest.fixture(scope="module")
def canvas_database() -> str:
    return migrated_database(CANVAS_DATABASE_URL)


@pytest.fixture
def cluster(canvas_database: str, tmp_path: Path) -> Iterator[Cluster]:
    redis.Redis.from_url(BROKER_URL).flushdb()
    redis.Redis.from_url(BACKEND_URL).flushdb()
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(cluster.log.read_text(errors="replace"))


def wait_until(predicate: Callable[[], bool], what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.log.read_text()[-4000:]}")
        time.sleep(0.1)


def test_a_workflow_in_a_chain_takes_and_passes_results(cluster: Cluster) -> None:
    workflow_id = str(uuid.uuid4())
    workflow = cluster.sig("canvas.double").set(task_id=workflow_id)
    result = chain(
        cluster.sig("canvas.add", 1, 2), workflow, cluster.sig("canvas.record", "chain")
    ).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == 6
    # The workflow's id is its signature's task id; it got add's result as its argument.
    assert cluster.status(workflow_id) == "SUCCESS"
    assert cluster.client.retrieve_workflow(workflow_id).get_result() == 6
    assert cluster.runs().count("double-3") == 1
    assert cluster.runs().count("fired-chain-6") == 1


def test_a_routed_immutable_workflow_signature(cluster: Cluster) -> None:
    workflow_id = str(uuid.uuid4())
    routed = cluster.sig("canvas.double", 7).set(queue=f"{cluster.queue}-b", task_id=workflow_id)
    routed.set(immutable=True)  # as .si(7): the previous result is not passed
    result = chain(cluster.sig("canvas.add", 1, 1), routed, cluster.sig("canvas.add", 1))
    assert result.apply_async().get(timeout=WAIT_SECONDS) == 15
    status = cluster.client.retrieve_workflow(workflow_id).get_status()
    assert status is not None and status.celery_queue == f"{cluster.queue}-b"
    assert status.queue_name is None  # a Celery queue, not a DBOS queue


def test_a_workflow_first_in_a_chain(cluster: Cluster) -> None:
    result = chain(cluster.sig("canvas.double", 5), cluster.sig("canvas.add", 1)).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == 11


def test_workflows_in_a_group(cluster: Cluster) -> None:
    result = group(cluster.sig("canvas.double", i) for i in range(3)).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == [0, 2, 4]


def test_workflows_in_a_chord_header(cluster: Cluster) -> None:
    header = [cluster.sig("canvas.double", 1), cluster.sig("canvas.double", 2)]
    header.append(cluster.sig("canvas.add", 1, 1))
    result = chord(header)(cluster.sig("canvas.total"))
    assert result.get(timeout=WAIT_SECONDS) == 2 + 4 + 2


def test_a_workflow_as_a_chord_body(cluster: Cluster) -> None:
    header = [cluster.sig("canvas.add", 1, 1), cluster.sig("canvas.add", 2, 2)]
    body_id = str(uuid.uuid4())
    result = chord(header)(cluster.sig("canvas.tenfold_sum").set(task_id=body_id))
    assert result.get(timeout=WAIT_SECONDS) == 60
    assert cluster.status(body_id) == "SUCCESS"


def test_a_retried_workflow_fires_its_chain_once(cluster: Cluster) -> None:
    key = uuid.uuid4().hex[:6]
    result = chain(
        cluster.sig("canvas.flaky_plus", 1, key), cluster.sig("canvas.record", key)
    ).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == 101
    # Three deliveries of the workflow's task (two Celery retries), one firing.
    assert cluster.runs().count(f"flaky-{key}") == 3
    time.sleep(3)  # a second firing, if there were one, would have had time to run
    assert cluster.runs().count(f"fired-{key}-101") == 1


def test_a_failed_workflow_fires_the_error_callback(cluster: Cluster) -> None:
    key = uuid.uuid4().hex[:6]
    workflow = cluster.sig("canvas.fails", 7).set(
        link_error=cluster.sig("canvas.record_error", key)
    )
    result = chain(workflow, cluster.sig("canvas.record", key)).apply_async()
    with pytest.raises(ValueError, match="no 7"):
        result.parent.get(timeout=WAIT_SECONDS)
    wait_until(lambda: f"errback-{key}-ValueError" in cluster.runs(), "the errback", cluster)
    assert not [line for line in cluster.runs() if line.startswith(f"fired-{key}")]


def test_delay_starts_a_workflow_with_an_idempotent_id(cluster: Cluster) -> None:
    workflow_id = f"order-{uuid.uuid4().hex[:6]}"
    first = cluster.sig("canvas.double", 21).set(task_id=workflow_id).delay()
    assert first.get(timeout=WAIT_SECONDS) == 42
    # The same id again: the workflow is not run again; a chain on it gets its result.
    result = chain(
        cluster.sig("canvas.double", 21).set(task_id=workflow_id),
        cluster.sig("canvas.record", workflow_id),
    ).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == 42
    assert cluster.runs().count("double-21") == 1
    assert cluster.runs().count(f"fired-{workflow_id}-42") == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Killed in a later delivery of the workflow's task (after a durable sleep).
        ("canvas.held", 1004),
        # Killed in the canvas message's own delivery, which runs the workflow first.
        ("canvas.held_first", 1004),
    ],
)
def test_a_chain_survives_a_worker_killed_mid_workflow(
    cluster: Cluster, name: str, expected: int
) -> None:
    key = uuid.uuid4().hex[:6]
    workflow_id = str(uuid.uuid4())
    workflow = cluster.sig(name, key).set(task_id=workflow_id)
    result = chain(
        cluster.sig("canvas.add", 1, 1), workflow, cluster.sig("canvas.record", key)
    ).apply_async()
    wait_until(lambda: f"held-{key}" in cluster.runs(), "the held step", cluster)
    cluster.kill()
    (cluster.directory / f"release-{key}").touch()
    cluster.worker = cluster.start()
    # Recovery runs the workflow again from its checkpoints; the chain continues once.
    assert result.get(timeout=WAIT_SECONDS) == expected
    assert cluster.runs().count("double-2") == 1
    assert cluster.runs().count(f"held-{key}") == 2
    assert cluster.status(workflow_id) == "SUCCESS"
    time.sleep(3)
    assert cluster.runs().count(f"fired-{key}-{expected}") == 1


def test_the_canvas_orders_example_chains_a_workflow_before_an_existing_task(
    canvas_database: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(BROKER_URL).flushdb()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_DATABASE_URL": CANVAS_DATABASE_URL,
        "CELERY_DURABLE_IMPORTS": "worker.examples.canvas_orders",
    }
    log = tmp_path / "workers.log"
    common = ["worker", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    workers = [
        spawn([*CELERY, "-A", "worker.ops_tasks", *common, "-Q", "ops", "-n", "ops@%h"], env, log),
        spawn([*CELERY, "-A", "worker.app", *common, "-n", "orders@%h"], env, log),
    ]
    order_id = f"o-{uuid.uuid4().hex[:6]}"
    # A producer that has only a Celery app (no DBOS): the example's pipeline.
    producer = (
        "import sys; from celery import Celery; Celery('producer', broker=sys.argv[1]); "
        "from worker.examples.canvas_orders import shipping_pipeline; "
        "shipping_pipeline(sys.argv[2]).apply_async()"
    )
    try:
        subprocess.run([sys.executable, "-c", producer, BROKER_URL, order_id], env=env, check=True)
        told = f"customer of {order_id} told: label-{order_id}"
        wait_for(lambda: told in log.read_text(), WAIT_SECONDS, "the notification", workers)
    finally:
        for worker in workers:
            worker.stop()
    assert log.read_text().count(told) == 1


def test_a_chord_survives_a_worker_killed_mid_header(cluster: Cluster) -> None:
    key = uuid.uuid4().hex[:6]
    header = [cluster.sig("canvas.held", 1, key), cluster.sig("canvas.double", 5)]
    header.append(cluster.sig("canvas.add", 1, 1))
    result = chord(header)(cluster.sig("canvas.record", key))
    wait_until(lambda: f"held-{key}" in cluster.runs(), "the held step", cluster)
    cluster.kill()
    (cluster.directory / f"release-{key}").touch()
    cluster.worker = cluster.start()
    # held: double(1) = 2, then 2 + 1000; double(5) = 10; add: 2.
    assert result.get(timeout=WAIT_SECONDS) == [1002, 10, 2]
    assert cluster.runs().count(f"held-{key}") == 2
    assert cluster.runs().count(f"fired-{key}-[1002, 10, 2]") == 1


def test_the_sweep_fires_the_callbacks_of_a_workflow_cancelled_while_it_waits(
    cluster: Cluster,
) -> None:
    key = uuid.uuid4().hex[:6]
    workflow_id = str(uuid.uuid4())
    workflow = cluster.sig("canvas.waits", 3, key).set(
        task_id=workflow_id, link_error=cluster.sig("canvas.record_error", key)
    )
    chain(workflow, cluster.sig("canvas.record", key)).apply_async()
    wait_until(lambda: f"waits-{key}" in cluster.runs(), "the workflow to wait", cluster)
    time.sleep(1)  # let it unwind into its wait: no delivery ends it now
    cluster.client.cancel_workflow(workflow_id)
    fired = f"errback-{key}-DBOSAwaitedWorkflowCancelledError"
    wait_until(lambda: fired in cluster.runs(), "the errback", cluster)
    assert f"{workflow_id} (canvas.waits) again: canvas callbacks not fired" in (
        cluster.log.read_text()
    )
    assert cluster.runs().count(fired) == 1
    assert not [line for line in cluster.runs() if line.startswith(f"fired-{key}")]


def test_a_second_canvas_on_a_running_workflow_is_refused_in_one_line(cluster: Cluster) -> None:
    key = uuid.uuid4().hex[:6]
    workflow_id = str(uuid.uuid4())
    first = chain(
        cluster.sig("canvas.waits", 3, key).set(task_id=workflow_id),
        cluster.sig("canvas.record", f"{key}-first"),
    ).apply_async()
    wait_until(lambda: f"waits-{key}" in cluster.runs(), "the workflow to wait", cluster)
    chain(
        cluster.sig("canvas.waits", 3, key).set(task_id=workflow_id),
        cluster.sig("canvas.record", f"{key}-second"),
    ).apply_async()
    refused = f"Workflow {workflow_id}: another canvas's callbacks wait for it"
    wait_until(lambda: refused in cluster.log.read_text(), "the refusal", cluster)
    cluster.client.send(workflow_id, "go", "go")
    assert first.get(timeout=WAIT_SECONDS) == 3
    assert cluster.runs().count(f"fired-{key}-first-3") == 1
    assert not [line for line in cluster.runs() if line.startswith(f"fired-{key}-second")]


def test_a_canvas_message_waits_for_postgresql_instead_of_failing(tmp_path: Path) -> None:
    """PostgreSQL is down when the workflow's canvas message arrives: the message is
    retried as it is (its callbacks kept), and the chain completes once it is back."""
    postgres = PrivatePostgres()
    cluster: Cluster | None = None
    try:
        migrate_database(postgres.url())
        redis.Redis.from_url(BROKER_URL).flushdb()
        redis.Redis.from_url(BACKEND_URL).flushdb()
        cluster = Cluster(tmp_path, postgres.url())
        key = uuid.uuid4().hex[:6]
        warm = chain(cluster.sig("canvas.double", 1), cluster.sig("canvas.record", key))
        assert warm.apply_async().get(timeout=WAIT_SECONDS) == 2
        postgres.halt()
        result = chain(
            cluster.sig("canvas.add", 2, 3),
            cluster.sig("canvas.double"),
            cluster.sig("canvas.record", key),
        ).apply_async()
        wait_until(lambda: "from a canvas:" in cluster.log.read_text(), "the canvas retry", cluster)
        postgres.resume()
        assert result.get(timeout=WAIT_SECONDS) == 10
        assert cluster.runs().count(f"fired-{key}-10") == 1
        assert cluster.runs().count("double-5") == 1
    finally:
        if cluster is not None:
            cluster.close()
        postgres.stop()
