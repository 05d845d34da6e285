"""Workflow code that reads workflows (``get_workflow_status``, a handle's
``get_status``, ``list_workflows``, ``list_queued_workflows``, ``list_workflow_steps``)
records each read as an operation, named as DBOS 3.4 names it: a replay reads what the
first execution read. Inside a step the same calls are plain reads."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.usefixtures("worker")

runs: Counter[str] = Counter()


@DBOS.workflow()
def inspected_child() -> str:
    return "child"


@DBOS.step()
def status_in_a_step(workflow_id: str) -> str:
    status = DBOS.get_workflow_status(workflow_id)
    return "missing" if status is None else status.status


@DBOS.workflow()
def inspecting(prefix: str) -> dict[str, Any]:
    runs[prefix] += 1
    handle = DBOS.start_workflow(inspected_child)
    handle.get_result()
    own = DBOS.get_workflow_status(DBOS.workflow_id or "")
    return {
        "child": handle.get_status().status,
        "own": None if own is None else own.status,
        "listed": len(DBOS.list_workflows(workflow_id_prefix=prefix)),
        "queued": len(DBOS.list_queued_workflows(queue_name="no-such-queue")),
        "steps": len(DBOS.list_workflow_steps(DBOS.workflow_id or "")),
        "in_step": status_in_a_step(DBOS.workflow_id or ""),
    }


def test_reads_in_workflow_code_are_recorded_as_dbos_names_them() -> None:
    prefix = f"inspect-{uuid.uuid4().hex[:8]}-"
    workflow_id = f"{prefix}main"
    with SetWorkflowID(workflow_id):
        first = inspecting(prefix)
    assert first == {
        "child": "SUCCESS",
        "own": "PENDING",
        "listed": 2,  # itself and its child
        "queued": 0,
        "steps": 6,
        "in_step": "PENDING",
    }
    names = [step["function_name"] for step in DBOS.list_workflow_steps(workflow_id)]
    assert names == [
        "inspected_child",
        "DBOS.getResult",
        "DBOS.getStatus",
        "DBOS.getStatus",
        "DBOS.listWorkflows",
        "DBOS.listQueuedWorkflows",
        "DBOS.listWorkflowSteps",
        "status_in_a_step",
    ]
    # Another workflow with the prefix now exists. A fork that runs the code again
    # from the last step reads the recorded answers, not the new ones.
    with SetWorkflowID(f"{prefix}other"):
        inspected_child()
    fork = DBOS.fork_workflow(workflow_id, len(names))
    assert fork.get_result(timeout=60) == first
    assert runs[prefix] == 2  # the fork ran the code again


@DBOS.workflow()
def writes_a_stream() -> None:
    DBOS.write_stream("s", "v0")
    DBOS.close_stream("s")


@DBOS.workflow()
def reads_through_a_client(target_id: str) -> dict[str, Any]:
    client = DBOSClient(DATABASE_URL)
    try:
        return {
            "stream": list(client.read_stream(target_id, "s")),
            "status": client.retrieve_workflow(target_id).get_status().status,
            "listed": len(client.list_workflows(workflow_ids=[target_id])),
        }
    finally:
        client.destroy()


def test_a_clients_reads_in_workflow_code_are_not_recorded() -> None:
    # As DBOS's: a client knows nothing of the workflow that calls it.
    target = f"client-target-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(target):
        writes_a_stream()
    reader = f"client-reader-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(reader):
        assert reads_through_a_client(target) == {
            "stream": ["v0"],
            "status": "SUCCESS",
            "listed": 1,
        }
    assert DBOS.list_workflow_steps(reader) == []
