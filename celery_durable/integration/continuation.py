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

from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.integration import publishing
from celery_durable.integration.process import ProcessServices
from celery_durable.store import Dispatch

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


def continue_workflow(
    services: ProcessServices,
    workflow_id: str,
    wake: Dispatch,
    *,
    queue: str,
    executor_id: str | None,
) -> None:
    """Runs the woken workflow here (see the module's docstring); whatever cannot run
    here is published as the workflow's message."""
    spec = services.registry.get(wake.name)
    if spec is None:  # a workflow of another process's code: for its workers
        _publish(services, workflow_id, wake)
        return
    engine = services.worker_engine()
    generation = wake.generation
    for _ in range(MAX_TURNS):
        options = RunOptions(
            inline_retries=False,
            generation=generation,
            max_countdown_seconds=services.max_countdown_seconds,
            max_recovery_attempts=spec.max_recovery_attempts,
            executor_id=executor_id,
        )
        try:
            with _callbacks_to(queue):
                result = engine.run(workflow_id, options)
        except RescheduleWorkflow as signal:
            # Its reschedule wrote the next generation (the claimed one plus one).
            generation += 1
            if signal.parked:
                return
            if signal.countdown_seconds <= 0:
                continue
            _publish(services, workflow_id, wake, generation, signal.countdown_seconds)
            return
        except DBOSSystemDatabaseError as error:
            logger.warning("Workflow %s: %s; its message will retry", workflow_id, error)
            _publish(services, workflow_id, wake, generation + 1, DATABASE_RETRY_SECONDS)
            return
        _ended(services, workflow_id, wake, generation, result)
        return
    _publish(services, workflow_id, wake, generation)


def _ended(
    services: ProcessServices, workflow_id: str, wake: Dispatch, generation: int, result: RunResult
) -> None:
    """A run that did not reschedule: what is left for a delivery to do, it gets."""
    if result.outcome == "busy":
        # Its fence is taken but no execution was active when the outcome was
        # recorded: a claim under way elsewhere, with an older generation (stale now),
        # or an execution of this process. The message runs it once that one is done.
        _publish(services, workflow_id, wake, generation, _BUSY_RETRY_SECONDS)
    elif result.outcome == "throttled" or (result.outcome == "version" and result.wait_seconds):
        # For a worker its queue's limits admit, or one of the workflow's version.
        countdown = min(result.wait_seconds, services.max_countdown_seconds)
        _publish(services, workflow_id, wake, generation, countdown)
    elif result.outcome == "completed" and getattr(result, "in_canvas", False):
        # A canvas waits for this workflow's outcome: the delivery that finds it
        # finished fires the canvas's callbacks (integration/tasks.py).
        _publish(services, workflow_id, wake, generation)
    elif result.outcome not in ("completed", "cancelled", "stale", "finished"):
        logger.info("Workflow %s: continued run ended %s", workflow_id, result.outcome)


def _publish(
    services: ProcessServices,
    workflow_id: str,
    wake: Dispatch,
    generation: int | None = None,
    countdown: float = 0.0,
) -> None:
    """The workflow's message, as the callback used to publish it; a broker that
    fails leaves the workflow to the recovery sweep (its delivery is overdue)."""
    try:
        publishing.publish_workflow(
            services.celery,
            wake.name,
            workflow_id,
            queue=wake.queue_name,
            generation=wake.generation if generation is None else generation,
            countdown=countdown or None,
        )
    except Exception:
        logger.warning(
            "Could not publish workflow %s now; the sweep will", workflow_id, exc_info=True
        )
