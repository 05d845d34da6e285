"""Bad input to the CLI, the API and the dashboard: a clear error; fork's step, one rule."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

import pytest
from starlette.testclient import TestClient

from celery_durable import DBOS, SetWorkflowID
from celery_durable.core import forking
from celery_durable.dashboard import DashboardSettings, create_app
from celery_durable.error import DBOSException
from tests.conftest import BROKER_URL, DATABASE_URL

pytestmark = pytest.mark.usefixtures("worker")

TOKEN = "a-test-token-of-32-characters-xx"
calls: Counter[str] = Counter()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": DATABASE_URL}
    env["CELERY_DURABLE_BROKER_URL"] = BROKER_URL
    return subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@DBOS.step()
def counted(name: str) -> str:
    calls[name] += 1
    return name


@DBOS.workflow()
def three_counted(tag: str) -> list[str]:
    return [counted(f"{tag}-{i}") for i in range(1, 4)]


def ran_three() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    workflow_id = f"input-{tag}"
    with SetWorkflowID(workflow_id):
        DBOS.start_workflow(three_counted, tag).get_result(timeout=30)
    return workflow_id, tag


def runs(tag: str) -> list[int]:
    """How often each of the workflow's three steps ran."""
    return [calls[f"{tag}-{i}"] for i in (1, 2, 3)]


# -- closed sets -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("workflows", "list", "--status", "DONE"),
        ("workflows", "list", "--status", "SUCCESS", "--status", "finished"),
        ("workflows", "list", "--limit", "0"),
        ("schedules", "list", "--status", "RUNNING"),
        ("recover", "--grace", "-1"),
        ("demo", "--timeout", "0"),
    ],
)
def test_a_value_outside_the_set_is_refused(args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"Invalid value for '{args[-2]}'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_status_in_any_case_filters() -> None:
    workflow_id, _ = ran_three()
    for spelling in ("success", "Success", "SUCCESS"):
        result = cli("workflows", "list", "--status", spelling, "--name", "three_counted")
        assert result.returncode == 0, result.stderr
        assert workflow_id in result.stdout
    assert workflow_id not in cli("workflows", "list", "--status", "error").stdout
    paused = cli("schedules", "list", "--status", "paused")
    assert paused.returncode == 0, paused.stderr


# -- fork's step: one rule, DBOS's ------------------------------------------------------


def test_the_api_forks_as_dbos_does() -> None:
    workflow_id, tag = ran_three()
    # Past the last step: every checkpoint is copied and replayed, nothing re-runs.
    past = DBOS.fork_workflow(workflow_id, 99)
    assert past.get_result(timeout=30) == [f"{tag}-{i}" for i in (1, 2, 3)]
    assert runs(tag) == [1, 1, 1]
    assert [s["function_id"] for s in DBOS.list_workflow_steps(past.workflow_id)] == [1, 2, 3]
    # Below 1 is taken as 1 (DBOS: "invalid < 1 will default to 1"): everything re-runs.
    for start in (0, -1):
        DBOS.fork_workflow(workflow_id, start).get_result(timeout=30)
    assert runs(tag) == [3, 3, 3]
    # Not a number: the rule's text, as the CLI and the dashboard say it.
    for bad in ("2", 2.0, True, None):
        with pytest.raises(DBOSException, match="whole number from 1"):
            DBOS.fork_workflow(workflow_id, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", ["0", "-3", "two", "1.5"])
def test_the_cli_takes_a_step_from_1_in_the_rules_words(step: str) -> None:
    result = cli("workflows", "fork", "any-id", f"--step={step}")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"{forking.RULE}, not '{step}'" in result.stderr


def test_the_cli_forks_from_a_step_and_past_the_last() -> None:
    workflow_id, tag = ran_three()
    for step, runs in (("3", 2), ("99", 2), ("1", 3)):
        result = cli("workflows", "fork", workflow_id, "--step", step)
        assert result.returncode == 0, result.stderr
        forked = DBOS.retrieve_workflow(result.stdout.strip())
        assert forked.get_result(timeout=30) == [f"{tag}-{i}" for i in (1, 2, 3)]
        assert calls[f"{tag}-3"] == runs


@pytest.fixture(scope="module")
def api() -> Any:
    settings = DashboardSettings(database_url=DATABASE_URL, broker_url=BROKER_URL, token=TOKEN)
    with TestClient(create_app(settings)) as client:
        client.headers["authorization"] = f"Bearer {TOKEN}"
        yield client


@pytest.mark.parametrize("step", [0, -3, "two"])
def test_the_dashboard_says_the_same(api: TestClient, step: Any) -> None:
    workflow_id, _ = ran_three()
    response = api.post(f"/api/workflows/{workflow_id}/fork", json={"start_step": step})
    assert response.status_code == 400 and forking.RULE in response.json()["error"]
    page = api.get(f"/workflows/{workflow_id}/fork", params={"step": str(step)})
    assert page.status_code == 400 and forking.RULE in page.text


def test_the_dashboard_forks_past_the_last_step(api: TestClient) -> None:
    workflow_id, tag = ran_three()
    response = api.post(f"/api/workflows/{workflow_id}/fork", json={"start_step": 99})
    assert response.status_code == 200, response.text
    forked = DBOS.retrieve_workflow(response.json()["forked_workflow_id"])
    assert forked.get_result(timeout=30) == [f"{tag}-{i}" for i in (1, 2, 3)]
    assert calls[f"{tag}-1"] == 1
