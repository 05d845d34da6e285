"""A workflow no worker can run (its name is registered nowhere): one line in the
worker's log each time the sweep publishes it again, and a note in ``workflows get``
and the dashboard (a real worker subprocess, the real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from celery_durable.dashboard import DashboardSettings, create_app
from tests.integration.test_faults import (
    FAULT_DATABASE_URL,
    REDIS_URL,
    _faults,
    fault_database,
    wait_until,
)

__all__ = ["fault_database"]  # a fixture used below

NAME = "no_such_workflow"


def test_an_unregistered_workflow_is_one_line_per_sweep_and_shown_by_the_tools(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _faults(REDIS_URL, tmp_path, pool="threads"):
        faults.start_worker(CD_FAULT_GRACE_SECONDS="1")
        handle = faults.client.enqueue(
            {"workflow_name": NAME, "queue_name": faults.queue, "allow_unregistered": True}
        )
        workflow_id = handle.workflow_id
        line = f"Workflow {workflow_id} ({NAME}): this worker has no workflow '{NAME}'"
        # The producer's message, then at least one the sweep published again.
        log_of = faults.worker_log
        wait_until(lambda: log_of().count(line) >= 2, 60, "two refused deliveries")  # noqa: B023
        log = faults.worker_log()
        assert "Received unregistered task" not in log, log
        assert "The full contents of the message body" not in log, log
        for logged in log.splitlines():
            if line in logged:
                assert "stays ENQUEUED and the recovery sweep publishes it again" in logged

        env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": FAULT_DATABASE_URL}
        result = subprocess.run(
            [sys.executable, "-m", "celery_durable.cli", "workflows", "get", workflow_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        note = f"waiting_for: no worker has registered workflow '{NAME}'"
        assert note in result.stdout, result.stdout
        as_json = subprocess.run(
            [sys.executable, "-m", "celery_durable.cli", "workflows", "get", workflow_id, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        document = json.loads(as_json.stdout)
        assert document["status"] == "ENQUEUED"
        assert document["waiting_for"].startswith(f"no worker has registered workflow '{NAME}'")

        settings = DashboardSettings(database_url=FAULT_DATABASE_URL, broker_url=None)
        with TestClient(create_app(settings)) as dashboard:
            page = dashboard.get(f"/workflows/{workflow_id}")
            assert page.status_code == 200
            assert f"no worker has registered workflow &#39;{NAME}&#39;" in page.text
            api = dashboard.get(f"/api/workflows/{workflow_id}").json()
            assert api["waiting_for"].startswith("no worker has registered workflow")

        faults.client.cancel_workflow(workflow_id)
        cancelled = subprocess.run(
            [sys.executable, "-m", "celery_durable.cli", "workflows", "get", workflow_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "waiting_for" not in cancelled.stdout
