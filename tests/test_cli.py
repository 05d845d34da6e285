"""The ``celery-durable workflows`` commands, run as a user would (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, SetWorkflowID
from tests.conftest import BROKER_URL, DATABASE_URL
from tests.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": DATABASE_URL}
    env["CELERY_DURABLE_BROKER_URL"] = BROKER_URL
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@DBOS.step(max_attempts=3, interval_seconds=0.3)
def cli_flaky(name: str) -> str:
    calls[name] += 1
    if calls[name] == 1:
        raise ConnectionError("first attempt")
    return name


@DBOS.step(max_attempts=2, interval_seconds=3.0)
def cli_waits(name: str) -> str:
    calls[name] += 1
    if calls[name] == 1:
        raise TimeoutError("later")
    return name


@DBOS.workflow()
def cli_workflow(tag: str) -> list[str]:
    return [cli_flaky(f"{tag}-a"), cli_waits(f"{tag}-b")]


def test_list_get_and_steps_as_tables_and_json() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_workflow, "t1")
    assert handle.get_result(timeout=30) == ["t1-a", "t1-b"]

    document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
    assert document["status"] == "SUCCESS" and document["output"] == ["t1-a", "t1-b"]
    assert "status: SUCCESS" in cli("workflows", "get", workflow_id).stdout

    steps: list[dict[str, Any]] = json.loads(
        cli("workflows", "steps", workflow_id, "--json").stdout
    )
    assert [(s["function_id"], s["function_name"], s["attempts"]) for s in steps] == [
        (1, "cli_flaky", 2),
        (2, "cli_waits", 2),
    ]
    assert steps[0]["attempt_history"][0]["error"] == {
        "type": "ConnectionError",
        "message": "first attempt",
    }
    table = cli("workflows", "steps", workflow_id).stdout
    assert "waited" in table and "failed: ConnectionError('first attempt')" in table
    # One row per attempt; the id column counts from 1, as DBOS does.
    assert [line.split()[:2] for line in table.splitlines()[1:5]] == [
        ["1", "cli_flaky"],
        ["1", "cli_flaky"],
        ["2", "cli_waits"],
        ["2", "cli_waits"],
    ]

    listed = json.loads(
        cli("workflows", "list", "--name", "cli_workflow", "--status", "SUCCESS", "--json").stdout
    )
    assert workflow_id in [w["workflow_id"] for w in listed]
    assert all(w["status"] == "SUCCESS" for w in listed)
    assert workflow_id in cli("workflows", "list", "--name", "cli_workflow").stdout


def test_cancel_resume_and_fork_from_the_command_line() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_workflow, "t2")
    wait_until(lambda: calls["t2-b"] == 1, 30, "the second step to wait for its retry")
    assert "CANCELLED" in cli("workflows", "cancel", workflow_id).stdout
    time.sleep(3.5)
    assert calls["t2-b"] == 1  # the cancelled retry never ran
    assert "ENQUEUED" in cli("workflows", "resume", workflow_id).stdout
    assert handle.get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (2, 2)

    forked_id = cli("workflows", "fork", workflow_id, "--step", "2").stdout.strip()
    assert forked_id and forked_id != workflow_id
    assert DBOS.retrieve_workflow(forked_id).get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (2, 3)  # only step 2 ran again
    # Without --step, as `dbos workflow fork`: from step 1, everything runs again.
    everything = cli("workflows", "fork", workflow_id).stdout.strip()
    assert DBOS.retrieve_workflow(everything).get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (3, 4)


def test_a_missing_workflow_is_a_clear_error() -> None:
    result = cli("workflows", "get", "no-such-workflow", check=False)
    assert result.returncode == 1
    assert "Workflow no-such-workflow does not exist" in result.stderr
