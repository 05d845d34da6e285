"""The in-process worker (``DBOS.launch()`` without ``celery worker``) with workflows
defined while it starts: its consumer iterates the app's tasks in its own thread while
the program's thread registers more."""

from __future__ import annotations

import uuid

from celery import Celery

from celery_durable.integration.inprocess_worker import InProcessWorker
from tests.conftest import BROKER_URL


def _noop() -> None:
    return None


def test_tasks_registered_while_the_consumer_iterates_them_do_not_end_the_worker() -> None:
    app = Celery(f"inprocess-{uuid.uuid4().hex[:8]}", broker=BROKER_URL, set_as_current=False)
    app.conf.task_default_queue = f"inprocess-{uuid.uuid4().hex[:8]}"  # nobody sends here
    worker = InProcessWorker(app, threads=1, queue_names=list)
    worker.start()
    try:
        # What the consumer's update_strategies does, while a workflow is defined: the
        # iteration is over a copy, so a task registered meanwhile is no error.
        seen = 0
        for name, _task in app.tasks.items():
            app.task(name=f"{name}.defined-meanwhile-{seen}")(_noop)
            seen += 1
        assert seen > 0 and len(app.tasks) == 2 * seen
        worker.refresh()
        assert worker.running
    finally:
        worker.stop(0)
