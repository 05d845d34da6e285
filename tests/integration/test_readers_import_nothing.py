"""Reading history never imports a module because the data names it.

A recorded error names its class's module. The client, the CLI and the dashboard read
it back; none of them may import that module to rebuild the class (its top-level code
would run in the reader: here it writes a marker file and raises ``KeyError``). The
error reads as a ``RecordedError`` with its type name and message.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from celery_durable import DBOSClient
from celery_durable.dashboard import DashboardSettings, create_app
from celery_durable.error import RecordedError
from celery_durable.store import SystemStore
from tests.conftest import BROKER_URL, DATABASE_URL
from tests.integration.test_fencing import new_row, step

MODULE = "tests.integration.import_side_effect"
TYPE_NAME = f"{MODULE}:SideEffectError"
MESSAGE = "the card was declined"
RECORDED = json.dumps(
    {"__cd__": "exception", "type": TYPE_NAME, "args": [MESSAGE], "message": MESSAGE}
)


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the module would leave its mark if any reader (this process, or one it
    starts) imported it."""
    path = tmp_path / "imported"
    monkeypatch.setenv("CD_IMPORT_SIDE_EFFECT_MARKER", str(path))
    assert MODULE not in sys.modules
    yield path
    assert MODULE not in sys.modules
    assert not path.exists(), path.read_text()


@pytest.fixture
def failed(dbos: Any) -> str:
    """A workflow whose step 1 failed with an error of the module's class."""
    store = SystemStore(DATABASE_URL, pool_size=1)
    try:
        row = new_row()
        store.workflows.insert_workflow(row)
        with store.executions.claim(row.workflow_uuid, "tests") as execution:
            execution.record_step(dataclasses.replace(step(1), output=None, error=RECORDED))
            assert execution.complete("ERROR", output=None, error=RECORDED)
    finally:
        store.dispose()
    return row.workflow_uuid


def test_the_client_reads_the_error_without_importing_its_module(marker: Path, failed: str) -> None:
    client = DBOSClient(DATABASE_URL, BROKER_URL)
    try:
        (listed,) = client.list_workflow_steps(failed)
        assert isinstance(listed["error"], RecordedError)
        assert (listed["error"].type_name, listed["error"].original_message) == (
            TYPE_NAME,
            MESSAGE,
        )
        with pytest.raises(RecordedError, match=MESSAGE):
            client.retrieve_workflow(failed).get_result(timeout=10)
    finally:
        client.destroy()


def test_the_cli_reads_the_error_without_importing_its_module(marker: Path, failed: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "workflows", "steps", failed, "--json"],
        env={
            **os.environ,
            "CELERY_DURABLE_DATABASE_URL": DATABASE_URL,
            "CELERY_DURABLE_BROKER_URL": BROKER_URL,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert MESSAGE in result.stdout and TYPE_NAME in result.stdout


def test_the_dashboard_reads_the_error_without_importing_its_module(
    marker: Path, failed: str
) -> None:
    token = f"token-{uuid.uuid4().hex}"
    settings = DashboardSettings(database_url=DATABASE_URL, broker_url=BROKER_URL, token=token)
    with TestClient(create_app(settings)) as api:
        api.headers["authorization"] = f"Bearer {token}"
        response = api.get(f"/api/workflows/{failed}/steps")
        assert response.status_code == 200, response.text
        (document,) = response.json()
        assert document["error"]["type"] == TYPE_NAME
        assert document["error"]["message"] == f"{TYPE_NAME}: {MESSAGE}"
        workflow = api.get(f"/api/workflows/{failed}").json()
        assert workflow["error"]["type"] == TYPE_NAME
