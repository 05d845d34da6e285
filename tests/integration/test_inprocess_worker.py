"""The in-process worker (``DBOS.launch()`` without ``celery worker``) with workflows
defined while it starts: a message for one its consumer has not read yet is delivered
(its consumer builds the task's strategy on demand: integration/inprocess_consumer.py).

The worker runs in a process of its own: stopping a Celery worker sets Celery's
process-wide shutdown flags, which would stop this test session's own worker too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import BROKER_URL
from tests.integration.subprocesses import ROOT

SCRIPT = """
import threading, time, uuid
from celery import Celery
from celery_durable.integration.inprocess_worker import InProcessWorker
from celery_durable.integration.publishing import publish_workflow

app = Celery(f"inprocess-{uuid.uuid4().hex[:8]}", broker=BROKER, set_as_current=False)
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
    def late(workflow_id):
        ran.set()

    # Published as a workflow's message is (its header), no refresh in between.
    publish_workflow(app, "late.workflow", f"late-{uuid.uuid4().hex[:8]}")
    print(ran.wait(10))  # far sooner than any recovery sweep
finally:
    worker.stop(0)
"""


def test_a_message_for_a_task_defined_after_the_consumer_started_is_delivered() -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"BROKER = {BROKER_URL!r}\n" + textwrap.dedent(SCRIPT)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["True"]
