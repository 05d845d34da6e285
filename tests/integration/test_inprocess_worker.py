"""The in-process worker (``DBOS.launch()`` without ``celery worker``) with workflows
defined while it starts: its consumer iterates the app's tasks in its own thread while
the program's thread registers more."""

from __future__ import annotations

import threading
import time
import uuid

from celery import Celery

from celery_durable.integration import unknown_tasks
from celery_durable.integration.inprocess_worker import InProcessWorker
from celery_durable.integration.publishing import publish_workflow
from tests.conftest import BROKER_URL


def _noop() -> None:
    return None


def test_a_message_refused_before_the_consumer_read_its_task_is_delivered_again() -> None:
    # A workflow defined after the consumer read the app's tasks (and before a refresh
    # reached it): Celery refuses its message; it is published again, and runs, at once.
    unknown_tasks.install()
    app = Celery(f"inprocess-{uuid.uuid4().hex[:8]}", broker=BROKER_URL, set_as_current=False)
    app.conf.task_default_queue = f"inprocess-{uuid.uuid4().hex[:8]}"
    worker = InProcessWorker(app, threads=1, queue_names=list)
    worker.start()
    ran = threading.Event()
    try:
        deadline = time.monotonic() + 20
        while worker._consumer_ready() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker._consumer_ready() is not None

        @app.task(name="late.workflow")
        def late(workflow_id: str) -> None:
            ran.set()

        # Published as a workflow's message is (its header), no refresh in between.
        publish_workflow(app, "late.workflow", f"late-{uuid.uuid4().hex[:8]}")
        assert ran.wait(10)  # far sooner than any recovery sweep
    finally:
        worker.stop(0)
