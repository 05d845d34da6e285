"""Watching one attempt of an ``async def`` step: its timeout and, for a preemptible
step, its workflow's cancellation (DBOS 3.4's ``timeout_seconds`` and ``preemptible``).

Only a coroutine can be stopped from outside: a synchronous step runs in a thread that
Python cannot interrupt, so both options are refused for it (as DBOS refuses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

from celery_durable.core.signals import WorkflowCancelled
from celery_durable.engine.context import WorkflowContext
from celery_durable.error import DBOSException, DBOSStepTimeoutError

# How often a preemptible step reads its workflow's status (DBOS polls once a second).
CANCELLATION_POLL_SECONDS = 1.0
# How often a preemptible step looks at its context's in-process cancel flag.
FLAG_POLL_SECONDS = 0.05


def check_options(
    step_name: str, is_async: bool, preemptible: bool, timeout_seconds: float | None
) -> None:
    """DBOS's checks, at decoration (``@DBOS.step``) or call (``DBOS.run_step``) time.

    Raises:
        DBOSException: either option on a synchronous step, or a timeout that is not a
            positive finite number.
    """
    if preemptible and not is_async:
        raise DBOSException(
            f"Step {step_name} is sync but preemptible=True. "
            "Preemption is only supported for async steps (a thread cannot be stopped)."
        )
    if timeout_seconds is None:
        return
    if not is_async:
        raise DBOSException(
            f"Step {step_name} is sync but timeout_seconds is set. "
            "Step timeouts are only supported for async steps (a thread cannot be stopped)."
        )
    if (
        not isinstance(timeout_seconds, int | float)
        or isinstance(timeout_seconds, bool)
        or not (timeout_seconds > 0 and math.isfinite(timeout_seconds))
    ):
        raise DBOSException(
            f"Step {step_name} has timeout_seconds={timeout_seconds}. "
            "Step timeouts must be positive and finite."
        )


async def supervise(
    workflow: WorkflowContext,
    step_name: str,
    call: Callable[[], Awaitable[Any]],
    *,
    preemptible: bool,
    timeout_seconds: float | None,
) -> Any:
    """Runs one attempt; a finished attempt keeps its outcome.

    Raises:
        DBOSStepTimeoutError: the attempt ran ``timeout_seconds`` (it is cancelled first
            and its cleanup awaited); a failed attempt like any other.
        WorkflowCancelled: the workflow was cancelled while a preemptible step ran (the
            attempt is cancelled and nothing is recorded: it runs again on resume).
    """
    step_task: asyncio.Task[Any] = asyncio.ensure_future(call())
    watcher = asyncio.ensure_future(_cancelled(workflow)) if preemptible else None
    try:
        watched: set[asyncio.Future[Any]] = {step_task}
        if watcher is not None:
            watched.add(watcher)
        done, _ = await asyncio.wait(
            watched, timeout=timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if step_task in done:
            return step_task.result()
        abort: BaseException
        if watcher is not None and watcher in done:
            abort = WorkflowCancelled(workflow.workflow_id)
        else:
            assert timeout_seconds is not None
            abort = DBOSStepTimeoutError(step_name, timeout_seconds)
        step_task.cancel()
        await asyncio.wait({step_task})
        outcome = None if step_task.cancelled() else step_task.exception()
        if outcome is not None and not isinstance(outcome, Exception):
            raise outcome
        raise abort from outcome
    finally:
        if watcher is not None:
            watcher.cancel()
        if not step_task.done():
            step_task.cancel()
            with contextlib.suppress(BaseException):  # its end is already decided
                await step_task


async def _cancelled(workflow: WorkflowContext) -> None:
    """Returns once the workflow is seen CANCELLED, or no longer PENDING at all
    (resumed under this execution, as a checkpoint would find it), read every second;
    within ``FLAG_POLL_SECONDS`` when this process cancels it (its context is flagged:
    :mod:`~celery_durable.engine.live_executions`)."""
    waited = 0.0
    while True:
        await asyncio.sleep(FLAG_POLL_SECONDS)
        if workflow.cancel_requested:
            return
        waited += FLAG_POLL_SECONDS
        if waited < CANCELLATION_POLL_SECONDS:
            continue
        waited = 0.0
        try:
            outcome = await asyncio.to_thread(
                workflow.store.workflows.get_outcome, workflow.workflow_id
            )
        except Exception:
            continue
        if outcome is not None and outcome[1] != "PENDING":
            return
