"""Workflows the dashboard's tests (and docs/screenshots.py) run on a real worker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from celery_durable import DBOS

calls: Counter[str] = Counter()


@DBOS.step(max_attempts=4, interval_seconds=0.3, backoff_rate=2.0)
def dash_charge(order: str) -> dict[str, Any]:
    """Fails twice (a flaky payment API), then succeeds: three attempts, two waits."""
    calls[order] += 1
    time.sleep(0.05)
    if calls[order] <= 2:
        raise ConnectionError(f"payment API unreachable (attempt {calls[order]})")
    return {"order": order, "charged": True}


@DBOS.step()
def dash_reserve(order: str) -> str:
    time.sleep(0.1)
    return f"reserved {order}"


@DBOS.step()
def dash_email(order: str) -> str:
    time.sleep(0.03)
    return f"mailed {order}"


@DBOS.workflow()
def dash_order(order: str) -> str:
    """A step, a retried step, an event, a stream and a last step."""
    dash_reserve(order)
    dash_charge(order)
    DBOS.set_event("stage", "charged")
    DBOS.write_stream("progress", {"order": order, "done": 2})
    DBOS.close_stream("progress")
    dash_email(order)
    return f"order {order} completed"


@DBOS.step(max_attempts=2, interval_seconds=0.2)
def dash_always_fails(order: str) -> None:
    raise ValueError(f"card declined for {order}")


@DBOS.workflow()
def dash_declined(order: str) -> None:
    dash_reserve(order)
    dash_always_fails(order)


@DBOS.step(max_attempts=3, interval_seconds=300.0)
def dash_stuck(order: str) -> None:
    raise TimeoutError(f"warehouse busy for {order}")


@DBOS.workflow()
def dash_waiting(order: str) -> None:
    """Waits five minutes in backoff after its first attempt: there to be cancelled."""
    dash_stuck(order)


@DBOS.workflow()
def dash_child(order: str) -> str:
    return dash_email(order)


@DBOS.workflow()
def dash_parent(order: str) -> str:
    handle = DBOS.start_workflow(dash_child, f"{order}-child")
    return handle.get_result()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def in_backoff(workflow_id: str) -> bool:
    steps = DBOS.list_workflow_steps(workflow_id)
    last = steps[-1] if steps else None
    return last is not None and last["completed_at_epoch_ms"] is None and last["attempts"] >= 1
