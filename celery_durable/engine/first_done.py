"""Waiting for the first of several things in workflow code, recorded as DBOS 3.4 does.

``DBOS.asyncio_wait`` records which of its awaitables were done (their indices, as the
operation ``DBOS.asyncio_wait``) and ``DBOS.wait_first`` which workflow it found
finished (``DBOS.waitFirst``): a replay returns the recorded answer, not whatever
finishes first this time. The operation takes its id before the awaitables start, so a
step passed as a coroutine is numbered after the wait, as in DBOS.

Neither holds the worker while it waits for another workflow. ``wait_first`` with none
finished unwinds with :class:`RescheduleWorkflow` (a finishing child wakes its parent;
it also checks every ``child_poll_seconds``). An awaitable of ``asyncio_wait`` that
unwinds that way (a child's ``get_result``, a ``DBOS.sleep``) counts as not done: the
wait goes on with the others, and if what is left cannot satisfy it, the signal
unwinds the workflow with nothing recorded. The wait runs again on replay, its
``timeout`` counted afresh (as DBOS's, the timeout is not durable). A direct call
waits in-process instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.signals import RescheduleWorkflow, WorkflowCancelled
from celery_durable.engine import checkpoints, recorded_calls
from celery_durable.engine.context import WorkflowContext

ASYNCIO_WAIT_NAME = "DBOS.asyncio_wait"
WAIT_FIRST_NAME = "DBOS.waitFirst"

_RETURN_WHEN = (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED)

Tasks = set[asyncio.Future[Any]]


def wait_first(
    workflow: WorkflowContext,
    workflow_ids: Sequence[str],
    first_finished: Callable[[], str | None],
    polling_interval_sec: float,
) -> str:
    """The id of the first of these workflows to finish (``first_finished`` reads it),
    recorded as ``DBOS.waitFirst``."""
    function_id, recorded = _begin_wait_first(workflow)
    if recorded is not None:
        return recorded
    started = now_epoch_ms()
    while True:
        with checkpoints.system_database_failure_reschedules():
            first = first_finished()
        if first is not None:
            break
        _no_wait_under_celery(workflow, workflow_ids)
        time.sleep(polling_interval_sec)
    _record_first(workflow, function_id, started, first)
    return first


async def wait_first_async(
    workflow: WorkflowContext,
    workflow_ids: Sequence[str],
    first_finished: Callable[[], str | None],
    polling_interval_sec: float,
) -> str:
    """``wait_first`` for ``async def`` workflow code: its id is taken at the call (in
    call order), and the reads run in a thread."""
    function_id, recorded = _begin_wait_first(workflow)
    if recorded is not None:
        return recorded
    started = now_epoch_ms()
    while True:
        with checkpoints.system_database_failure_reschedules():
            first = await asyncio.to_thread(first_finished)
        if first is not None:
            break
        _no_wait_under_celery(workflow, workflow_ids)
        await asyncio.sleep(polling_interval_sec)
    _record_first(workflow, function_id, started, first)
    return first


def _begin_wait_first(workflow: WorkflowContext) -> tuple[int, str | None]:
    """Takes the wait's id; returns it with the recorded answer, if any."""
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None and recorded.completed:
        checkpoints.expect_name(workflow, function_id, WAIT_FIRST_NAME, recorded.function_name)
        return function_id, str(checkpoints.replay(workflow, recorded))
    return function_id, None


def _no_wait_under_celery(workflow: WorkflowContext, workflow_ids: Sequence[str]) -> None:
    """Under Celery, none finished frees the worker (a direct call polls instead)."""
    if not workflow.inline_retries:
        raise RescheduleWorkflow(
            workflow.launcher.child_poll_seconds,
            f"waiting for the first of workflows {', '.join(workflow_ids)}",
            routine=True,
        )


def _record_first(workflow: WorkflowContext, function_id: int, started: int, first: str) -> None:
    output = workflow.serializer.dumps(first)
    recorded_calls.record(workflow, function_id, WAIT_FIRST_NAME, started, output, None)


async def asyncio_wait(
    workflow: WorkflowContext,
    fs: Sequence[Awaitable[Any]],
    timeout: float | None,
    return_when: str,
) -> tuple[Tasks, Tasks]:
    """``asyncio.wait(fs, timeout=timeout, return_when=return_when)``, its answer
    recorded as ``DBOS.asyncio_wait`` (see the module's docstring).

    Raises:
        ValueError: no awaitables, or an unknown ``return_when`` (as ``asyncio.wait``).
    """
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return_when value: {return_when}")
    function_id = workflow.next_function_id()
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(f) for f in fs]
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None and recorded.completed:
        checkpoints.expect_name(workflow, function_id, ASYNCIO_WAIT_NAME, recorded.function_name)
        indices = set(checkpoints.replay(workflow, recorded) or [])
        # Let the tasks start (and steps take their ids) before the code goes on, as
        # they do while a first execution waits.
        await asyncio.sleep(0)
        done: Tasks = {task for index, task in enumerate(tasks) if index in indices}
        if done:
            await asyncio.wait(done)
            if signals := [s for task in done if (s := _signal(task)) is not None]:
                raise _first(signals)
        return done, {task for task in tasks if task not in done}
    started = now_epoch_ms()
    done, pending, signals = await _wait_live(set(tasks), timeout, return_when)
    if signals and not pending and not _satisfied(done, return_when):
        raise _first(signals)
    indices_done = [index for index, task in enumerate(tasks) if task in done]
    output = workflow.serializer.dumps(indices_done)
    recorded_calls.record(workflow, function_id, ASYNCIO_WAIT_NAME, started, output, None)
    return done, {task for task in tasks if task not in done}


async def _wait_live(
    tasks: Tasks, timeout: float | None, return_when: str
) -> tuple[Tasks, Tasks, list[BaseException]]:
    """Waits as ``asyncio.wait`` does, but a task that ended with a control-flow
    signal is set apart (with its signal), not done."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    done: Tasks = set()
    pending = tasks
    signals: list[BaseException] = []
    while pending and not _satisfied(done, return_when):
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            break
        finished, pending = await asyncio.wait(
            pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
        )
        if not finished:
            break  # timed out
        for task in finished:
            if (signal := _signal(task)) is not None:
                signals.append(signal)
            else:
                done.add(task)
    return done, pending, signals


def _satisfied(done: Tasks, return_when: str) -> bool:
    """Whether ``done`` ends a wait of ``return_when`` before every task is done."""
    if return_when == asyncio.FIRST_COMPLETED:
        return bool(done)
    if return_when == asyncio.FIRST_EXCEPTION:
        return any(not task.cancelled() and task.exception() is not None for task in done)
    return False


def _signal(task: asyncio.Future[Any]) -> BaseException | None:
    """The control-flow signal (not an error of the code) a done task ended with."""
    if task.cancelled():
        return None
    failure = task.exception()
    return failure if failure is not None and not isinstance(failure, Exception) else None


def _first(signals: list[BaseException]) -> BaseException:
    """The signal to unwind with: a cancellation first, else the earliest reschedule."""
    for signal in signals:
        if isinstance(signal, WorkflowCancelled):
            return signal
    reschedules = [s for s in signals if isinstance(s, RescheduleWorkflow)]
    if reschedules:
        return min(reschedules, key=lambda signal: signal.countdown_seconds)
    return signals[0]
