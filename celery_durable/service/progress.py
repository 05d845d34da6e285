"""What a workflow does now, read from what the database already records (no write on
the hot path): the claim marks the row executing (``execution_active``) with its
executor and time; each step's row holds its attempts and when the next one is due.

- A workflow that an execution holds runs after its last recorded step, since the
  claim, on the claimer's executor.
- A step between attempts whose next attempt is due, in a workflow an execution holds,
  is running that attempt (a worker claimed the workflow to run it; the attempt's row
  is written when it ends).
- A step between attempts of a workflow that has finished (cancelled, failed, ...)
  has no next attempt: it is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery_durable.core.records import TERMINAL_STATUSES
from celery_durable.service.overview import Execution


def attempt_label(attempt: int, max_attempts: int | None) -> str:
    """Attempt ``n`` of the step's budget (``3/4``); ``n`` alone where there is no
    budget (an operation that is not retried, a step recorded before budgets were)."""
    return f"{attempt}/{max_attempts}" if max_attempts is not None else str(attempt)


def step_state(step: Mapping[str, Any], execution: Execution | None, now_epoch_ms: int) -> str:
    """success, error, running, waiting (its next attempt is not due, or no worker runs
    it yet) or stopped (the workflow finished between two attempts)."""
    if step["completed_at_epoch_ms"] is not None:
        return "error" if step["error"] is not None else "success"
    if execution is not None and execution.status in TERMINAL_STATUSES:
        return "stopped"
    due = step["retry_due_at_epoch_ms"]
    if due is None:
        return "running"
    if execution is not None and execution.execution_active and due <= now_epoch_ms:
        return "running"
    return "waiting"


def with_current_attempts(
    steps: Sequence[Mapping[str, Any]], execution: Execution | None, now_epoch_ms: int
) -> list[dict[str, Any]]:
    """The steps (as ``list_workflow_steps`` gives them), each with its ``state``; a
    step running its next attempt gets that attempt in its ``attempt_history`` (started
    when it was due, or at the claim if later; not completed)."""
    shown = []
    for step in steps:
        state = step_state(step, execution, now_epoch_ms)
        history = step["attempt_history"]
        due = step["retry_due_at_epoch_ms"]
        if state == "running" and due is not None and execution is not None:
            history = [
                *history,
                {
                    "attempt": step["attempts"] + 1,
                    "started_at_epoch_ms": max(due, execution.updated_at_epoch_ms),
                    "completed_at_epoch_ms": None,
                    "error": None,
                },
            ]
        shown.append({**step, "state": state, "attempt_history": history})
    return shown


def running_now(
    steps: Sequence[Mapping[str, Any]], execution: Execution | None, now_epoch_ms: int
) -> dict[str, Any] | None:
    """While an execution holds the workflow: ``after_step`` (the last step recorded
    complete, 0 for none), ``step`` and ``attempt`` (the step between attempts whose
    next attempt runs or waits in this execution, and that attempt, as ``3/4``; None: a
    step after ``after_step`` whose row is written when it ends), ``since_epoch_ms`` (the
    claim), ``executor_id`` and ``due_epoch_ms`` (set while that attempt is not due: the
    execution waits for it in-process). None when no execution holds it."""
    if execution is None or not execution.execution_active:
        return None
    if execution.status in TERMINAL_STATUSES:
        return None
    done = [s["function_id"] for s in steps if s["completed_at_epoch_ms"] is not None]
    between = [s for s in steps if s["completed_at_epoch_ms"] is None]
    due = between[0]["retry_due_at_epoch_ms"] if between else None
    return {
        "after_step": max(done, default=0),
        "step": between[0]["function_id"] if between else None,
        "attempt": (
            attempt_label(between[0]["attempts"] + 1, between[0]["max_attempts"])
            if between
            else None
        ),
        # Set: the execution waits in-process until then (a direct call's retry).
        "due_epoch_ms": due if due is not None and due > now_epoch_ms else None,
        "since_epoch_ms": execution.updated_at_epoch_ms,
        "executor_id": execution.executor_id,
    }


def ending_reason(
    status: str, deadline_epoch_ms: int | None, updated_at_epoch_ms: int | None
) -> str | None:
    """Why a workflow without an error ended where the record says so: cancelled at
    its deadline (its timeout)."""
    if status != "CANCELLED" or deadline_epoch_ms is None or updated_at_epoch_ms is None:
        return None
    if updated_at_epoch_ms < deadline_epoch_ms:
        return None
    return "cancelled: its deadline passed (workflow timeout)"
