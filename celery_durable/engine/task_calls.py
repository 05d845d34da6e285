"""Existing Celery tasks called durably from workflow code (``DBOS.run_task``,
``DBOS.start_task``).

A call is one operation of the workflow (one function id) whose checkpoint row moves
through these states, each written once:

- **in flight**: ``child_workflow_id`` is the attempt's Celery task id
  (``<workflow id>:task:<function id>:<attempt>``), ``retry_due_at_epoch_ms`` its
  deadline (None without a timeout). It is recorded *before* the task is sent, so a
  replay never sends an attempt again: a crash between the two, or a message the broker
  lost, leaves an attempt that never reports, which the deadline turns into a failure.
- **failed attempt**: the task's ``link_error`` callback wrote ``error`` (the workflow
  decides on its next run whether to retry).
- **backing off**: no task in flight (``child_workflow_id`` None), the next attempt due
  at ``retry_due_at_epoch_ms``; ``attempt_log`` holds every failed attempt.
- **complete**: the ``link`` callback wrote the output, or the workflow recorded the
  final error (the task's, or ``DBOSMaxStepRetriesExceeded`` with every attempt's).

The workflow holds no worker slot while a task runs: it unwinds with
:class:`RescheduleWorkflow` and is run on by the process of the callback that records
the outcome, which claims it in the same statement (``claim_after_task``, through
``RunOptions.reported``). A ``run_task`` call's first attempt is recorded in flight by
the statement that parks the workflow (``RescheduleWorkflow.checkpoint``) and sent once
it has committed. The engine knows nothing of Celery: the signature is opaque here and
sent by the launcher (``Launcher.dispatch_task``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, replace
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.core.retry import RetryPolicy
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import checkpoints
from celery_durable.engine.context import WorkflowContext, current_step, current_workflow
from celery_durable.error import DBOSCeleryTaskError, DBOSException, DBOSMaxStepRetriesExceeded

logger = logging.getLogger("celery_durable.tasks")

# How long a workflow waits for a task without a timeout before it looks again (its
# callback wakes it at once; this only bounds a wait nothing will end).
NO_DEADLINE_RECHECK_SECONDS = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class TaskCall:
    """What a workflow asked for: the Celery task (``name``; ``signature`` is opaque to
    the engine), its retry policy and each attempt's timeout."""

    name: str
    signature: Any
    policy: RetryPolicy
    timeout_seconds: float | None


def task_id_of(workflow_id: str, function_id: int, attempt: int) -> str:
    """The Celery task id of one attempt: the same on every replay."""
    return f"{workflow_id}:task:{function_id}:{attempt}"


def start(call: TaskCall) -> int:
    """Sends the task (unless a replay finds it sent) and returns the call's function id.

    Raises:
        DBOSException: outside workflow code, or inside a step.
    """
    workflow = _require_workflow(call.name)
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is None:
        _dispatch(workflow, function_id, call, attempt=1, log=[], first_started=None)
    else:
        checkpoints.expect_name(workflow, function_id, call.name, recorded.function_name)
        _settle(workflow, function_id, call)
    return function_id


def result(workflow: WorkflowContext, function_id: int, call: TaskCall) -> Any:
    """The call's outcome: its value, or its error raised.

    Raises:
        RescheduleWorkflow: the task has not finished (or its next attempt is not due):
            the worker is freed until the callback (or the deadline) wakes the workflow.
    """
    recorded = _settle(workflow, function_id, call)
    if recorded.completed:
        return checkpoints.replay(workflow, recorded)
    raise _waiting(workflow, call, recorded)


def run(call: TaskCall) -> Any:
    """``start`` then ``result``, for a call awaited at once (``DBOS.run_task``): a new
    call's first attempt is recorded in flight by the statement that parks the
    workflow, and sent once that statement has committed (one statement, not two).

    Raises:
        DBOSException: outside workflow code, or inside a step.
        RescheduleWorkflow: the task has not finished (see :func:`result`).
    """
    workflow = _require_workflow(call.name)
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(workflow, function_id, call.name, recorded.function_name)
        return result(workflow, function_id, call)
    in_flight = _in_flight(workflow, function_id, call, attempt=1, log=[], first_started=None)
    workflow.checkpoints[function_id] = in_flight  # this execution's picture of it
    signal = _waiting(workflow, call, in_flight)
    signal.checkpoint = in_flight
    signal.after_parked = functools.partial(_send_parked, workflow, function_id, call)
    raise signal


def _waiting(workflow: WorkflowContext, call: TaskCall, recorded: StepRecord) -> RescheduleWorkflow:
    """The reschedule of a workflow that waits for an unfinished call."""
    due = _next_due(workflow)
    if due is None:
        signal = RescheduleWorkflow(
            NO_DEADLINE_RECHECK_SECONDS,
            f"waiting for task {call.name}[{recorded.child_workflow_id}]",
            routine=True,
        )
        signal.ended_by_callback = recorded.child_workflow_id is not None
        return signal
    until = dt.datetime.fromtimestamp(due / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    what = (
        f"waiting for task {call.name}[{recorded.child_workflow_id}] (next look at {until})"
        if recorded.child_workflow_id is not None
        else f"task {call.name} attempt {recorded.attempts + 1} is due at {until}"
    )
    signal = RescheduleWorkflow(max(0.0, (due - now_epoch_ms()) / 1000), what, routine=True)
    signal.ended_by_callback = recorded.child_workflow_id is not None
    return signal


def _send_parked(workflow: WorkflowContext, function_id: int, call: TaskCall) -> None:
    """Sends the attempt ``run`` recorded in flight as it parked the workflow. A send
    that fails is reported as the attempt's failure, as its error callback would."""
    task_id = task_id_of(workflow.workflow_id, function_id, 1)
    try:
        workflow.launcher.dispatch_task(
            call.signature,
            task_id=task_id,
            workflow_id=workflow.workflow_id,
            function_id=function_id,
        )
    except Exception as error:
        logger.warning(
            "Workflow %s could not send task %s[%s]: %r",
            workflow.workflow_id,
            call.name,
            task_id,
            error,
        )
        try:
            workflow.launcher.report_unsent_task(workflow.workflow_id, function_id, task_id, error)
        except Exception:
            logger.warning(
                "Workflow %s: task %s[%s] is neither sent nor reported failed; only its "
                "timeout ends its attempt",
                workflow.workflow_id,
                call.name,
                task_id,
                exc_info=True,
            )


def _next_due(workflow: WorkflowContext) -> int | None:
    """When the workflow must look again while it waits for a task: the soonest deadline
    or retry of its unfinished calls (a call started after the awaited one may be due
    first). Only task calls are unfinished with a due time here: a step in backoff
    reschedules the workflow before anything after it runs."""
    dues = [
        record.retry_due_at_epoch_ms
        for record in workflow.checkpoints.values()
        if not record.completed and record.retry_due_at_epoch_ms is not None
    ]
    return min(dues, default=None)


def _require_workflow(name: str) -> WorkflowContext:
    workflow = current_workflow.get()
    if workflow is None or current_step.get() is not None:
        raise DBOSException(
            f"run_task/start_task({name}) must be called from workflow code (not from a "
            "step, nor outside a workflow): only a workflow can wait for a task durably"
        )
    if workflow.inline_retries:
        raise DBOSException(
            f"run_task/start_task({name}) needs a workflow run by a worker: start this "
            "workflow with DBOS.start_workflow (or a Queue), not as a direct call"
        )
    return workflow


def _settle(workflow: WorkflowContext, function_id: int, call: TaskCall) -> StepRecord:
    """Moves the call on as far as it can now: a reported or timed-out failure becomes a
    retry (or the final error); a due retry is sent. Returns the checkpoint then."""
    recorded = workflow.checkpoints[function_id]
    now = now_epoch_ms()
    if recorded.completed:
        return recorded
    due = recorded.retry_due_at_epoch_ms
    if recorded.child_workflow_id is None:  # backing off
        if due is not None and now < due:
            return recorded
        log = _log_of(workflow, recorded)
        return _dispatch(
            workflow,
            function_id,
            call,
            attempt=recorded.attempts + 1,
            log=log,
            first_started=recorded.started_at_epoch_ms,
        )
    if recorded.error is not None:
        error = checkpoints.load(workflow, function_id, call.name, recorded.error)
        return _failed(workflow, recorded, call, error)
    if due is not None and now >= due:
        timeout = DBOSCeleryTaskError(
            call.name,
            recorded.child_workflow_id,
            "TimeoutError",
            f"no outcome within {call.timeout_seconds}s (the task did not finish, or its "
            "message or its callback was lost)",
        )
        return _failed(workflow, recorded, call, timeout)
    return recorded


def _in_flight(
    workflow: WorkflowContext,
    function_id: int,
    call: TaskCall,
    *,
    attempt: int,
    log: list[dict[str, Any]],
    first_started: int | None,
) -> StepRecord:
    """The checkpoint of attempt ``attempt`` in flight."""
    now = now_epoch_ms()
    timeout = call.timeout_seconds
    return StepRecord(
        function_id=function_id,
        function_name=call.name,
        output=None,
        error=None,
        attempts=attempt,
        attempt_log=workflow.serializer.dumps(log) if log else None,
        retry_due_at_epoch_ms=None if timeout is None else now + round(timeout * 1000),
        started_at_epoch_ms=first_started if first_started is not None else now,
        completed_at_epoch_ms=None,
        child_workflow_id=task_id_of(workflow.workflow_id, function_id, attempt),
        max_attempts=call.policy.attempts_allowed,
    )


def _dispatch(
    workflow: WorkflowContext,
    function_id: int,
    call: TaskCall,
    *,
    attempt: int,
    log: list[dict[str, Any]],
    first_started: int | None,
) -> StepRecord:
    """Records attempt ``attempt`` in flight, then sends it (a send that fails is a
    failed attempt)."""
    in_flight = _in_flight(
        workflow, function_id, call, attempt=attempt, log=log, first_started=first_started
    )
    task_id = in_flight.child_workflow_id
    assert task_id is not None
    _write(workflow, in_flight)
    try:
        with checkpoints.system_database_failure_reschedules():
            workflow.launcher.dispatch_task(
                call.signature,
                task_id=task_id,
                workflow_id=workflow.workflow_id,
                function_id=function_id,
            )
    except Exception as error:
        logger.warning(
            "Workflow %s could not send task %s[%s]: %r",
            workflow.workflow_id,
            call.name,
            task_id,
            error,
        )
        return _failed(workflow, in_flight, call, error)
    return in_flight


def _failed(
    workflow: WorkflowContext, recorded: StepRecord, call: TaskCall, error: BaseException
) -> StepRecord:
    """A failed attempt: the next one after the backoff, or the final error recorded."""
    attempt = recorded.attempts
    now = now_epoch_ms()
    log = [
        *_log_of(workflow, recorded),
        {
            "started_at_epoch_ms": _attempt_started(workflow, recorded, call),
            "completed_at_epoch_ms": now,
            "error": error,
        },
    ]
    policy = call.policy
    final: BaseException | None = None
    if not isinstance(error, Exception) or not policy.retries(error):
        final = error
    elif attempt >= policy.max_attempts:
        final = DBOSMaxStepRetriesExceeded(
            call.name, policy.max_attempts, [entry["error"] for entry in log]
        )
    serializer = workflow.serializer
    if final is None:
        delay = policy.delay_after(attempt)
        logger.warning(
            "Workflow %s task %s attempt %d/%d failed: %r; next attempt in %.1fs",
            workflow.workflow_id,
            call.name,
            attempt,
            policy.attempts_allowed,
            error,
            delay,
        )
        backing_off = replace(
            recorded,
            error=None,
            attempt_log=serializer.dumps(log),
            retry_due_at_epoch_ms=now + round(delay * 1000),
            child_workflow_id=None,
        )
        return _write(workflow, backing_off)
    return _write(
        workflow,
        replace(
            recorded,
            error=serializer.dumps(final),
            attempt_log=serializer.dumps(log),
            retry_due_at_epoch_ms=None,
            completed_at_epoch_ms=now,
        ),
    )


def _write(workflow: WorkflowContext, record: StepRecord) -> StepRecord:
    """Writes the call's checkpoint and keeps it as this execution's picture of it.

    A callback may have completed the row in between (a timed-out attempt that
    reported after all): nothing is then written, and the workflow runs again at once
    to read what the callback recorded.
    """
    with checkpoints.system_database_failure_reschedules():
        status = workflow.execution.record_step(record)
    if status is None:
        raise RescheduleWorkflow(0, f"task call {record.function_id} completed meanwhile")
    checkpoints.stop_if_cancelled(workflow, status)
    workflow.checkpoints[record.function_id] = record
    return record


def _log_of(workflow: WorkflowContext, recorded: StepRecord) -> list[dict[str, Any]]:
    if recorded.attempt_log is None:
        return []
    log: list[dict[str, Any]] = checkpoints.load(
        workflow, recorded.function_id, recorded.function_name, recorded.attempt_log
    )
    return log


def _attempt_started(workflow: WorkflowContext, recorded: StepRecord, call: TaskCall) -> int:
    """When the attempt was sent: the first at the call's start, a later one when the
    backoff before it ended (the backoff is a pure function of the attempt number)."""
    previous = _log_of(workflow, recorded)
    if not previous:
        return recorded.started_at_epoch_ms
    last_failed_at = int(previous[-1]["completed_at_epoch_ms"])
    return last_failed_at + round(call.policy.delay_after(recorded.attempts - 1) * 1000)
