"""Cancelling, resuming, deleting and forking workflows from workflow code are
operations of the calling workflow, as DBOS records them (``DBOS.cancelWorkflow``,
``DBOS.resumeWorkflow``, ``DBOS.deleteWorkflow``, ``DBOS.forkWorkflow``): a replay reads
the record and does not act again (a fork forked again under a new id each replay)."""

from __future__ import annotations

from typing import Any

import pytest

from celery_durable import DBOS

pytestmark = pytest.mark.usefixtures("worker")


@DBOS.workflow()
def doubled_in_operations(value: int) -> int:
    return value * 2


@DBOS.workflow()
def operates(cancelled: str, resumed: str, deleted: str, forked_from: str) -> list[Any]:
    DBOS.cancel_workflows([cancelled])
    (handle,) = DBOS.resume_workflows([resumed])
    DBOS.delete_workflows([deleted])
    fork = DBOS.fork_workflow(forked_from, 1)
    again = DBOS.resume_workflow(resumed)
    return [handle.get_result(), fork.workflow_id, fork.get_result(), again.get_result()]


def test_workflow_code_operates_on_workflows_as_recorded_operations() -> None:
    finished = [DBOS.start_workflow(doubled_in_operations, n) for n in range(4)]
    assert [h.get_result(timeout=30) for h in finished] == [0, 2, 4, 6]
    cancelled, resumed, deleted, forked_from = (h.workflow_id for h in finished)
    handle = DBOS.start_workflow(operates, cancelled, resumed, deleted, forked_from)
    result = handle.get_result(timeout=60)
    assert result[0] == 2 and result[2] == 6 and result[3] == 2
    steps = [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)]
    assert steps[:4] == [
        "DBOS.cancelWorkflow",
        "DBOS.resumeWorkflow",
        "DBOS.deleteWorkflow",
        "DBOS.forkWorkflow",
    ]
    assert "DBOS.resumeWorkflow" in steps[4:]
    assert DBOS.get_workflow_status(deleted) is None
    # A replay of every operation: the same fork, not a new one.
    replay = DBOS.fork_workflow(handle.workflow_id, len(steps) + 1)
    assert replay.get_result(timeout=60) == result
    forks = [
        w
        for w in DBOS.list_workflows(name=doubled_in_operations.__qualname__)
        if w.forked_from == forked_from
    ]
    assert [w.workflow_id for w in forks] == [result[1]]
