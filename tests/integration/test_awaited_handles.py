"""A workflow awaiting, through a handle, a workflow that is not its child: nothing wakes
it when that one ends, so it reads the outcome again, after 1 s at first and then after
as long as it has waited, up to ``child_poll_seconds`` (30 s): a short wait no longer
costs 30 s."""

from __future__ import annotations

import time
from typing import Any

import pytest

from celery_durable import DBOS

pytestmark = pytest.mark.usefixtures("worker")


@DBOS.workflow()
def finishes_later(seconds: float) -> str:
    DBOS.sleep(seconds)
    return "done"


@DBOS.workflow()
def awaits_by_handle(workflow_id: str) -> Any:
    return DBOS.retrieve_workflow(workflow_id).get_result()


def test_a_workflow_awaited_by_handle_is_read_again_soon() -> None:
    target = DBOS.start_workflow(finishes_later, 2.0)
    started = time.monotonic()
    waiter = DBOS.start_workflow(awaits_by_handle, target.workflow_id)
    assert waiter.get_result(timeout=60) == "done"
    assert time.monotonic() - started < 15  # it waited 30 s for its second read before
    steps = DBOS.list_workflow_steps(waiter.workflow_id)
    assert [s["function_name"] for s in steps] == ["DBOS.getResult"]
