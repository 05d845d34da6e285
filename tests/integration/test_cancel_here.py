"""A cancel made in the process that executes the workflow stops it before its next
step, as DBOS's check before each step does (engine/live_executions.py); resumed, it
runs that step then."""

from __future__ import annotations

import threading

import pytest

from celery_durable import DBOS
from celery_durable.error import DBOSAwaitedWorkflowCancelledError

pytestmark = pytest.mark.usefixtures("worker")

ran: list[str] = []
at_gate = threading.Event()
gate = threading.Event()
left = threading.Event()


@DBOS.step()
def before_cancel() -> None:
    ran.append("before")


@DBOS.step()
def after_cancel() -> None:
    ran.append("after")


@DBOS.workflow()
def cancelled_between_steps() -> str:
    before_cancel()
    at_gate.set()
    gate.wait(30)
    try:
        after_cancel()
    finally:
        left.set()
    return "done"


def test_a_cancel_made_here_stops_the_workflow_before_its_next_step() -> None:
    handle = DBOS.start_workflow(cancelled_between_steps)
    assert at_gate.wait(30)
    DBOS.cancel_workflow(handle.workflow_id)
    gate.set()
    assert left.wait(30)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=30)
    assert ran == ["before"]
    resumed = DBOS.resume_workflow(handle.workflow_id)
    assert resumed.get_result(timeout=30) == "done"
    assert ran == ["before", "after"]
