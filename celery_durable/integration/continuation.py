"""A workflow continued in the process that recorded what it waited for.

When a Celery task called by ``DBOS.run_task`` ends, its outcome is recorded by our
callback (``integration/task_calls.py``), which wakes the workflow. Publishing the
workflow's message and waiting for a worker to take it would cost a broker round trip
and a task execution per call; instead the process that recorded the outcome runs the
workflow on at once, as a delivery of the woken workflow would: the record's wake-up
gave it a fresh dispatch generation that no message carries, so its claim is the
workflow's only one (the fence and the generation check of ``claim_workflow`` hold as
for any delivery).

What ends this run is handled as ``integration/tasks.py`` handles a delivery's end,
except that a wait goes to the broker as the workflow's own message:

- parked (waiting for a task's callback, a message, a long sleep): nothing to send;
- due soon (a retry's backoff, a short sleep): the workflow's message with that
  countdown and the generation its reschedule wrote;
- due at once (a task's outcome recorded while the workflow was still running, which
  asks it to run again): the next run here, up to ``MAX_TURNS`` times in a row;
- its queue's limits, another version's worker, a database that does not answer: the
  workflow's message, for a worker to take as usual.

A crash of this process loses nothing: the outcome is committed, and a workflow woken
but not claimed (its delivery overdue) or claimed by a dead execution (its owner gone)
is published again by the recovery sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.integration import publishing
from celery_durable.integration.process import ProcessServices
from celery_durable.store import Dispatch, ReportedOutcome

logger = logging.getLogger("celery_durable.tasks")

# Runs in a row in one continuation (each woken again while it ran) before the
# workflow's message takes over: a bound on how long a callback holds its worker.
MAX_TURNS = 20

# How soon a workflow found busy (see ``_ended``) is tried again.
_BUSY_RETRY_SECONDS = 1.0

# The queue the callbacks of tasks dispatched by a continued workflow go to: the
# queue its callback came from (whose workers serve it), not the current Celery task's
# (a plain task's own queue, when its worker records the outcome in-process).
_callback_queue: ContextVar[str | None] = ContextVar("callback_queue", default=None)


def callback_queue() -> str | None:
    """The queue for our callbacks while a workflow is continued here (else None)."""
    return _callback_queue.get()


@contextmanager
def _callbacks_to(queue: str) -> Iterator[None]:
    token = _callback_queue.set(queue)
    try:
        yield
    finally:
        _callback_queue.reset(token)


def continue_after_task(
    services: ProcessServices,
    workflow_id: str,
    reported: ReportedOutcome,
    *,
    queue: str,
    executor_id: str | None,
) -> None:
    """Records a task's outcome and, if that woke the workflow, runs it here (one
    round trip: ``claim_after_task``); see the module's docstring.

    Raises:
        DBOSSystemDatabaseError: the outcome may not have been recorded (the callback
            retries; a duplicate records nothing).
    """
    engine = services.worker_engine()
    options = RunOptions(
        inline_retries=False,
        max_countdown_seconds=services.max_countdown_seconds,
        executor_id=executor_id,
        reported=reported,
    )
    dispatch: Dispatch | None = None
    for _ in range(MAX_TURNS):
        try:
            with _callbacks_to(queue):
                result = engine.run(workflow_id, options)
        except RescheduleWorkflow as signal:
            if signal.generation is None or signal.workflow_name is None:
                return  # its reschedule was not recorded: the sweep runs it again
            dispatch = Dispatch(
                name=signal.workflow_name,
                queue_name=signal.queue_name,
                generation=signal.generation,
            )
            if signal.parked:
                return
            if signal.countdown_seconds > 0:
                _publish(services, workflow_id, dispatch, signal.countdown_seconds)
                return
            # Woken while it ran (another call's outcome): on at once, here.
            options = replace(options, generation=dispatch.generation, reported=None)
            continue
        except DBOSSystemDatabaseError as error:
            if options.reported is not None:
                raise
            logger.warning("Workflow %s: %s; its message will retry", workflow_id, error)
            if dispatch is not None:
                _publish(services, workflow_id, dispatch, DATABASE_RETRY_SECONDS)
            return
        _ended(services, workflow_id, result)
        return
    if dispatch is not None:
        _publish(services, workflow_id, dispatch)


def _ended(services: ProcessServices, workflow_id: str, result: RunResult) -> None:
    """A run that did not reschedule: what is left for a delivery to do, it gets."""
    woken = result.woken
    if woken is None:  # nothing woken here (a duplicate, or it runs elsewhere)
        return
    if result.outcome == "busy":
        # Its fence is taken but no execution was active when the outcome was
        # recorded: a claim under way elsewhere, with an older generation (stale now),
        # or an execution of this process. The message runs it once that one is done.
        _publish(services, workflow_id, woken, _BUSY_RETRY_SECONDS)
    elif result.outcome == "throttled" or (result.outcome == "version" and result.wait_seconds):
        # For a worker its queue's limits admit, or one of the workflow's version.
        countdown = min(result.wait_seconds, services.max_countdown_seconds)
        _publish(services, workflow_id, woken, countdown)
    elif result.outcome == "completed" and getattr(result, "in_canvas", False):
        # A canvas waits for this workflow's outcome: the delivery that finds it
        # finished fires the canvas's callbacks (integration/tasks.py).
        _publish(services, workflow_id, woken)


def _publish(
    services: ProcessServices, workflow_id: str, wake: Dispatch, countdown: float = 0.0
) -> None:
    """The workflow's message, as the callback used to publish it; a broker that
    fails leaves the workflow to the recovery sweep (its delivery is overdue)."""
    try:
        publishing.publish_workflow(
            services.celery,
            wake.name,
            workflow_id,
            queue=wake.queue_name,
            generation=wake.generation,
            countdown=countdown or None,
        )
    except Exception:
        logger.warning(
            "Could not publish workflow %s now; the sweep will", workflow_id, exc_info=True
        )
