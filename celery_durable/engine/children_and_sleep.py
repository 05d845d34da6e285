"""Durable waits inside a workflow: child workflows, their results, and sleep.

None of them holds a worker slot. A parent waiting on a child, or a sleeping workflow,
records what it waits for as a checkpoint and unwinds with :class:`RescheduleWorkflow`:
its task is retried when the wait is over (a child that finishes wakes its parent at
once; the parent also checks every ``child_poll_seconds`` in case that message is
lost). A direct in-process call waits in-process instead: its children run inline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.outcomes import decode_outcome
from celery_durable.core.records import TERMINAL_STATUSES, StepRecord, WorkflowStatusString
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import checkpoints, outcome_polling
from celery_durable.engine.context import WorkflowContext, in_workflow_code, next_workflow_id
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
)

# How soon a workflow waiting for a workflow it did not start looks again, at first.
_FIRST_POLL_SECONDS = 0.5

SLEEP_NAME = "DBOS.sleep"
GET_RESULT_NAME = "DBOS.getResult"


def start_child(
    parent: WorkflowContext,
    spec: WorkflowSpec,
    args: Any,
    kwargs: Any,
    *,
    queue_name: str | None = None,
) -> str:
    """``DBOS.start_workflow`` (or ``Queue.enqueue``, on ``queue_name``) inside a
    workflow: a child with a deterministic id.

    It is published to the workers even from a direct call: started means "runs in
    the background".

    Returns:
        The child's workflow id.
    """
    function_id, child_id, recorded = _child(
        parent, spec, args, kwargs, publish=True, queue_name=queue_name
    )
    if recorded is None:
        _record(parent, function_id, spec.name, child_id, output=None, error=None, final=True)
    return child_id


def call_child(parent: WorkflowContext, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
    """Calling a workflow from a workflow: start it as a child and wait for its result,
    two operations as DBOS records them (the child's start, then ``DBOS.getResult``
    holding its outcome)."""
    function_id, child_id, recorded = _child(
        parent, spec, args, kwargs, publish=not parent.inline_retries
    )
    if recorded is not None and (recorded.output is not None or recorded.error is not None):
        # Recorded by a release before, in one operation holding the outcome.
        return checkpoints.replay(parent, recorded)
    if recorded is not None and not recorded.completed:
        # A release before's call, still waiting: it goes on in that one operation.
        _run_inline_child_if_direct(parent, child_id, spec)
        return _await(parent, function_id, spec.name, child_id)
    if recorded is None:
        _record(parent, function_id, spec.name, child_id, output=None, error=None, final=True)
    result_id = parent.next_function_id()
    result = parent.checkpoints.get(result_id)
    if result is not None:
        checkpoints.expect_name(parent, result_id, GET_RESULT_NAME, result.function_name)
        if result.completed:
            return checkpoints.replay(parent, result)
    else:
        _record(parent, result_id, GET_RESULT_NAME, child_id, output=None, error=None, final=False)
    _run_inline_child_if_direct(parent, child_id, spec)
    return _await(parent, result_id, GET_RESULT_NAME, child_id)


def _run_inline_child_if_direct(parent: WorkflowContext, child_id: str, spec: WorkflowSpec) -> None:
    if parent.inline_retries:
        _run_inline_child(parent, child_id, spec)


def await_result(parent: WorkflowContext, workflow_id: str) -> Any:
    """``handle.get_result()`` inside a workflow: a durable wait, recorded once done."""
    function_id, recorded = _begin_await(parent, workflow_id)
    if recorded is not None:
        return checkpoints.replay(parent, recorded)
    return _await(parent, function_id, GET_RESULT_NAME, workflow_id)


async def await_result_async(parent: WorkflowContext, workflow_id: str) -> Any:
    """``await handle.get_result()`` inside an ``async def`` workflow: ``await_result``
    that never blocks the event loop (its id is taken at the call, before any await, so
    waits started together are numbered in call order). A direct call's wait polls from
    the loop: the workflow it waits for may need that loop, or its threads."""
    function_id, recorded = _begin_await(parent, workflow_id)
    if recorded is not None:
        return checkpoints.replay(parent, recorded)
    if not parent.inline_retries:
        return await asyncio.to_thread(_await, parent, function_id, GET_RESULT_NAME, workflow_id)
    try:
        with checkpoints.system_database_failure_reschedules():
            result = await outcome_polling.wait_for_async(
                parent.store, parent.serializer, workflow_id
            )
        output, error = parent.serializer.dumps(result), None
    except DBOSNonExistentWorkflowError:
        raise  # nothing to record, as _await
    except Exception as failure:  # the workflow's own failure, or its cancellation
        output, error = None, parent.serializer.dumps(failure)
    return await asyncio.to_thread(
        _settle, parent, function_id, GET_RESULT_NAME, workflow_id, output, error
    )


def _begin_await(parent: WorkflowContext, workflow_id: str) -> tuple[int, StepRecord | None]:
    """Takes the wait's id; returns it with its completed checkpoint, if recorded (a
    new wait is recorded as started)."""
    function_id = parent.next_function_id()
    recorded = parent.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(parent, function_id, GET_RESULT_NAME, recorded.function_name)
        if recorded.completed:
            return function_id, recorded
    else:
        _record(
            parent, function_id, GET_RESULT_NAME, workflow_id, output=None, error=None, final=False
        )
    return function_id, None


def sleep_remaining(seconds: float) -> float:
    """``DBOS.sleep``'s durable part: the wake-up time is recorded once.

    Returns:
        How long the caller must still wait in-process (outside a workflow, or in a
        direct call); 0 once the wake-up time has passed.

    Raises:
        RescheduleWorkflow: under Celery, to free the worker until the wake-up time.
    """
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"sleep seconds must be a number >= 0, not {seconds!r}")
    workflow = in_workflow_code()
    if workflow is None:
        return float(seconds)
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(workflow, function_id, SLEEP_NAME, recorded.function_name)
        wake_at_epoch_ms = int(checkpoints.replay(workflow, recorded))
    else:
        wake_at_epoch_ms = now_epoch_ms() + round(seconds * 1000)
        # Completed at the wake-up time, as DBOS records it: its duration is the sleep's.
        _record(
            workflow,
            function_id,
            SLEEP_NAME,
            None,
            output=workflow.serializer.dumps(wake_at_epoch_ms),
            error=None,
            final=True,
            completed_at=wake_at_epoch_ms,
        )
    remaining = max(0.0, (wake_at_epoch_ms - now_epoch_ms()) / 1000)
    if remaining == 0 or workflow.inline_retries:
        return remaining
    wake = dt.datetime.fromtimestamp(wake_at_epoch_ms / 1000, tz=dt.UTC)
    raise RescheduleWorkflow(
        remaining, f"sleeping until {wake.isoformat(timespec='seconds')}", routine=True
    )


def _child(
    parent: WorkflowContext,
    spec: WorkflowSpec,
    args: Any,
    kwargs: Any,
    *,
    publish: bool,
    queue_name: str | None = None,
) -> tuple[int, str, StepRecord | None]:
    """Takes the call's function id and makes sure the child exists (and is published).

    A start refused for its deduplication id is recorded as the operation's error, as
    DBOS records it: a replay raises it again rather than starting the child once the
    id is free.
    """
    function_id = parent.next_function_id()
    recorded = parent.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(parent, function_id, spec.name, recorded.function_name)
        next_workflow_id.set(None)
        if recorded.error is not None and recorded.child_workflow_id is None:
            checkpoints.replay(parent, recorded)  # the refused start: raises its error
        return function_id, str(recorded.child_workflow_id), recorded
    child_id = next_workflow_id.get() or f"{parent.workflow_id}-{function_id}"
    next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
    try:
        with checkpoints.system_database_failure_reschedules():
            parent.launcher.start_child(
                spec,
                tuple(args),
                dict(kwargs),
                workflow_id=child_id,
                parent_workflow_id=parent.workflow_id,
                publish=publish,
                queue_name=queue_name,
            )
    except DBOSQueueDeduplicatedError as refused:
        error = parent.serializer.dumps(refused)
        _record(parent, function_id, spec.name, None, output=None, error=error, final=True)
        raise
    parent.started_children.add(child_id)
    return function_id, child_id, None


def _run_inline_child(parent: WorkflowContext, child_id: str, spec: WorkflowSpec) -> None:
    """A direct call's child runs in-process too, while the parent waits.

    In a thread of its own: it starts with no workflow context, and an ``async def``
    child gets an event loop of its own. The child's own outcome, error included, is
    recorded and read back by ``_await``; a failure that left no outcome (the system
    database, an unregistered name, ...) is raised here rather than waited on.
    """
    failures: list[BaseException] = []

    def run() -> None:
        try:
            parent.launcher.run_inline(child_id, spec)
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=run, name=f"child-{child_id}")
    thread.start()
    thread.join()
    if failures:
        with checkpoints.system_database_failure_reschedules():
            outcome = parent.store.workflows.get_outcome(child_id)
        if outcome is None or outcome[1] not in TERMINAL_STATUSES:
            raise failures[0]


def _await(parent: WorkflowContext, function_id: int, name: str, child_id: str) -> Any:
    """The awaited workflow's outcome, recorded at ``function_id``; while it runs, a
    reschedule (a child wakes its parent when it ends; any other workflow is read again
    sooner at first: ``_poll_seconds``)."""
    with checkpoints.system_database_failure_reschedules():
        outcome = parent.store.workflows.get_outcome(child_id)
    if outcome is None:
        raise DBOSNonExistentWorkflowError(child_id)
    _, status, output, error = outcome
    if status not in TERMINAL_STATUSES:
        if not parent.inline_retries:
            raise RescheduleWorkflow(
                _poll_seconds(parent, function_id, child_id),
                f"waiting for workflow {child_id}",
                routine=True,
            )
        # Run elsewhere (started, or by another process): a direct call waits here.
        try:
            result = outcome_polling.wait_for(parent.store, parent.serializer, child_id)
            output, error = parent.serializer.dumps(result), None
        except Exception as failure:
            output, error = None, parent.serializer.dumps(failure)
    elif status == WorkflowStatusString.CANCELLED:
        output, error = None, parent.serializer.dumps(DBOSAwaitedWorkflowCancelledError(child_id))
    elif status == WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        try:
            decode_outcome(child_id, status, output, error, parent.serializer)
        except Exception as failure:
            output, error = None, parent.serializer.dumps(failure)
    return _settle(parent, function_id, name, child_id, output, error)


def _settle(
    parent: WorkflowContext,
    function_id: int,
    name: str,
    child_id: str,
    output: str | None,
    error: str | None,
) -> Any:
    """Records the wait's outcome; returns the output or raises the error."""
    _record(parent, function_id, name, child_id, output=output, error=error, final=True)
    return decode_outcome(
        child_id,
        WorkflowStatusString.ERROR if error is not None else WorkflowStatusString.SUCCESS,
        output,
        error,
        parent.serializer,
    )[1]


def _poll_seconds(parent: WorkflowContext, function_id: int, awaited_id: str) -> float:
    """When a workflow waiting for another's outcome looks again. A child wakes its
    parent when it finishes (the poll, ``child_poll_seconds``, only covers a lost
    wake-up); any other workflow (a fork, one started elsewhere) wakes nobody: it is
    looked at soon, then less often (a quarter of the wait so far, from half a second),
    up to ``child_poll_seconds``."""
    longest = parent.launcher.child_poll_seconds
    started_here = awaited_id in parent.started_children or any(
        record.child_workflow_id == awaited_id and record.function_name != GET_RESULT_NAME
        for record in parent.checkpoints.values()
    )
    if started_here:
        return longest
    recorded = parent.checkpoints.get(function_id)
    now = now_epoch_ms()
    since = recorded.started_at_epoch_ms if recorded is not None else None
    waited = (now - (since or now)) / 1000
    return min(longest, max(_FIRST_POLL_SECONDS, waited / 4))


def _record(
    workflow: WorkflowContext,
    function_id: int,
    name: str,
    child_id: str | None,
    *,
    output: str | None,
    error: str | None,
    final: bool,
    completed_at: int | None = None,
) -> None:
    now = now_epoch_ms()
    recorded = workflow.checkpoints.get(function_id)
    checkpoints.record(
        workflow,
        StepRecord(
            function_id=function_id,
            function_name=name,
            output=output,
            error=error,
            attempts=1,
            attempt_log=None,
            retry_due_at_epoch_ms=None,
            started_at_epoch_ms=recorded.started_at_epoch_ms if recorded else now,
            completed_at_epoch_ms=(completed_at or now) if final else None,
            child_workflow_id=child_id,
        ),
    )
