"""Plain-text tables and JSON documents for the command line."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import to_jsonable
from celery_durable.core.tracebacks import recorded_traceback
from celery_durable.service import progress
from celery_durable.service.overview import Execution
from celery_durable.service.tools import DEFAULT_VERSION_LIVE_MS as LIVE_MS
from celery_durable.service.types import WorkerVersion


def render(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def iso(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def workflows_table(workflows: Sequence[WorkflowStatus]) -> str:
    rows = [("workflow id", "name", "status", "queue", "created", "recoveries", "version")]
    for workflow in workflows:
        rows.append(
            (
                workflow.workflow_id,
                workflow.name,
                workflow.status,
                workflow.queue_name or "-",
                iso(workflow.created_at),
                str(workflow.recovery_attempts),
                workflow.app_version or "-",
            )
        )
    return render(rows)


def steps_table(
    steps: Sequence[Mapping[str, Any]], execution: Execution | None, now_epoch_ms: int
) -> str:
    """One row per attempt (attempt n of the step's budget: ``3/4``): when it started
    (from the first attempt), how long it took, how long the workflow waited before it
    (the backoff), and how it ended; a step's attempt that runs now shows as running."""
    rows = [("id", "step", "attempt", "starts at", "waited", "took", "outcome")]
    for step in progress.with_current_attempts(list(steps), execution, now_epoch_ms):
        first = step["started_at_epoch_ms"]
        previous_end: int | None = None
        for entry in step["attempt_history"]:
            started = entry["started_at_epoch_ms"]
            completed = entry["completed_at_epoch_ms"]
            waited = "-" if previous_end is None else f"{(started - previous_end) / 1000:.3f}s"
            took = "-" if completed is None else f"{(completed - started) / 1000:.3f}s"
            if entry["error"] is not None:
                outcome = f"failed: {entry['error']!r}"
            elif completed is None:
                outcome = f"running since {iso(started)}"
            elif step["error"] is not None:
                outcome = "error"
            else:
                outcome = f"ok: {step['output']!r}"
            rows.append(
                (
                    str(step["function_id"]),
                    step["function_name"],
                    progress.attempt_label(entry["attempt"], step["max_attempts"]),
                    f"+{(started - first) / 1000:.3f}s",
                    waited,
                    took,
                    outcome,
                )
            )
            previous_end = completed
        note = _step_note(step, execution, now_epoch_ms)
        if note is not None:
            rows.append(("", "", "", "", "", "", note))
        if step["child_workflow_id"]:
            rows.append(("", "", "", "", "", "", f"child workflow {step['child_workflow_id']}"))
        if step["error"] is not None:
            rows.append(("", "", "", "", "", "", f"raised: {step['error']}"))
    return render(rows)


def _step_note(step: dict[str, Any], execution: Execution | None, now_epoch_ms: int) -> str | None:
    """What comes next for a step between attempts: nothing once the workflow finished."""
    due = step["retry_due_at_epoch_ms"]
    if step["state"] == "stopped" and execution is not None:
        return f"no next attempt: the workflow is {execution.status}"
    if step["state"] != "waiting" or due is None:
        return None
    if due > now_epoch_ms:
        return f"next attempt at {iso(due)}"
    return f"next attempt due since {iso(due)}: waiting for a worker to run it"


def running_line(running: dict[str, Any] | None) -> str | None:
    """``running after step N since T on E`` while an execution holds the workflow."""
    if running is None:
        return None
    where = f" on {running['executor_id']}" if running["executor_id"] else ""
    if running["step"] is None:
        what = f"after step {running['after_step']}"
    elif running["due_epoch_ms"] is not None:
        what = (
            f"step {running['step']}, waiting in-process for attempt {running['attempt']} "
            f"(due {iso(running['due_epoch_ms'])})"
        )
    else:
        what = f"step {running['step']}, attempt {running['attempt']}"
    return f"{what}, since {iso(running['since_epoch_ms'])}{where}"


def jsonable_error(error: BaseException | None) -> dict[str, str | None] | None:
    """An error's type, message and recorded traceback (None when it was recorded
    without one)."""
    if error is None:
        return None
    return {
        "type": type(error).__name__,
        "message": str(error),
        "traceback": recorded_traceback(error),
    }


def brief_error(document: dict[str, str | None] | None) -> dict[str, str | None] | None:
    """An error document without its traceback: one line of text output."""
    if document is None:
        return None
    return {key: item for key, item in document.items() if key != "traceback"}


def workflow_document(workflow: WorkflowStatus) -> dict[str, Any]:
    return {
        "workflow_id": workflow.workflow_id,
        "name": workflow.name,
        "status": workflow.status,
        "queue_name": workflow.queue_name,
        "input": to_jsonable(workflow.input),
        "output": to_jsonable(workflow.output),
        "error": jsonable_error(workflow.error),
        "executor_id": workflow.executor_id,
        "recovery_attempts": workflow.recovery_attempts,
        "max_recovery_attempts": workflow.max_recovery_attempts,
        "parent_workflow_id": workflow.parent_workflow_id,
        "deduplication_id": workflow.deduplication_id,
        "priority": workflow.priority,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
        "started_at_epoch_ms": workflow.started_at_epoch_ms,
        "completed_at_epoch_ms": workflow.completed_at_epoch_ms,
        "workflow_deadline_epoch_ms": workflow.workflow_deadline_epoch_ms,
        "app_version": workflow.app_version,
    }


# The fields of `workflows get` that its text leaves out when they have no value.
OMITTED_WHEN_NONE = frozenset(
    {"waiting_for", "running", "reason", "forked_from", "workflow_deadline_epoch_ms"}
)
_TIMES = frozenset({"created_at", "updated_at"})


def text_key(key: str) -> str:
    """A document's key as text shows it: times without their unit (they are ISO)."""
    return "deadline" if key == "workflow_deadline_epoch_ms" else key.removesuffix("_epoch_ms")


def text_value(key: str, value: Any) -> Any:
    """A document's value as text shows it: epoch milliseconds as ISO times (UTC)."""
    if key in _TIMES or key.endswith("_epoch_ms"):
        return iso(value)
    return value


def version_note(
    workflow: WorkflowStatus,
    workers: Sequence[WorkerVersion],
    last_seen: dict[str, int],
    now_epoch_ms: int,
) -> str | None:
    """Why a runnable workflow of an application version no running worker has waits
    (``last_seen``: when a worker of each version was last seen, those that left too)."""
    version = workflow.app_version
    if version is None or workflow.status not in ("ENQUEUED", "PENDING"):
        return None
    live = [w for w in workers if w.last_seen_epoch_ms > now_epoch_ms - LIVE_MS]
    if any(w.application_version == version for w in live):
        return None
    seen = last_seen.get(version)
    last = f"last seen {iso(seen)}" if seen is not None else "never seen"
    running = sorted({w.application_version for w in live})
    return (
        f"waits for a worker of application version {version} ({last}); "
        f"running: {', '.join(running) or 'none'}. Start a worker of {version}, or move "
        f"it: celery-durable workflows fork {workflow.workflow_id} --step N "
        "--application-version V"
    )


def json_value(value: Any) -> str:
    """One value as a line of JSON (tagged, like the documents, where JSON cannot carry it)."""
    return json.dumps(to_jsonable(value))


def events_document(events: dict[str, Any]) -> dict[str, Any]:
    return {key: to_jsonable(value) for key, value in events.items()}


def events_table(events: dict[str, Any]) -> str:
    """One row per event key, its latest value as JSON."""
    return render([("key", "value"), *((key, json_value(v)) for key, v in events.items())])


def step_document(step: dict[str, Any]) -> dict[str, Any]:
    return {
        **step,
        "output": to_jsonable(step["output"]),
        "error": jsonable_error(step["error"]),
        "attempt_history": [
            {**entry, "error": jsonable_error(entry["error"])} for entry in step["attempt_history"]
        ],
    }
