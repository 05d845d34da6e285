"""The Celery integration: workflow tasks, and every Celery setting they need.

Each registered workflow becomes a Celery task of the same name. celery_durable's own
messages carry the workflow id as its only argument; any other message (a signature in
a chain, group or chord, or ``.delay()``) starts the workflow with the message's
arguments and fires the canvas's callbacks once, when the workflow ends (see
:mod:`~celery_durable.integration.canvas`). The engine signals "wait, then run me again" with
:class:`RescheduleWorkflow`; this module alone turns that into ``Task.retry``.

Celery's defaults are wrong for durable work and are overridden here:

- ``max_retries=None``: the attempt budget is the step's, kept in PostgreSQL.
- no ``expires``: a retry carries the original message's options, and an expiry would
  revoke a step's later attempt.
- ``acks_late=True`` with ``reject_on_worker_lost=True``: a killed child does not drop
  its message.

Every message of a workflow carries its dispatch generation as Celery's ``retries``
(so Flower's retry count is the workflow's); a delivery older than the workflow's
current generation is stale and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import weakref
from collections.abc import Callable
from typing import Any, cast

from celery import Celery, Task
from celery.backends.base import DisabledBackend
from celery.exceptions import Ignore, Retry

from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.serialization import to_jsonable
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.integration import canvas, retry_log, unknown_tasks
from celery_durable.integration.process import ProcessServices

logger = logging.getLogger("celery_durable.celery")

WORKFLOW_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,
    # The body takes the workflow id, not the workflow's own arguments.
    "typing": False,
}

# Workflow names already registered on each app (the app's own registry is only
# complete once the app is finalized).
_registered: weakref.WeakKeyDictionary[Celery, set[str]] = weakref.WeakKeyDictionary()


class _RetryReason(Exception):
    """The ``exc`` of a workflow task's Celery retry: one line for operators."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __repr__(self) -> str:
        # Celery puts repr(exc) in the task-retried event (Request.on_retry, safe_repr)
        # and in the worker's "retry: Retry in Ns: ..." line; Flower shows it.
        return f"{type(self).__name__}: {self.reason}"

    def __reduce__(self) -> Any:
        return (self.__class__, (self.reason,))


class StepRetry(_RetryReason):
    """Why a workflow task is retried: a step's attempt failed, or a wait (sleep, child).

    Not raised to user code: it is the ``exc`` of ``Task.retry`` so that Celery's RETRY
    state and ``task-retried`` event name the step, the attempt and the delay, e.g.
    ``StepRetry: step 'charge' attempt 2/5 failed: ConnectionError('timeout'); next
    attempt in 4.0s``.
    """


class QueueWait(_RetryReason):
    """Why a workflow task is retried while its queue's limits hold it ENQUEUED."""


class VersionWait(_RetryReason):
    """Why a workflow task is retried: it reached a worker of another application
    version while one of its own version runs (a rolling deploy)."""


class WorkflowTask(Task):  # type: ignore[type-arg]
    """The base of workflow tasks: after a delivery that fired a canvas's callbacks
    (see :mod:`~celery_durable.integration.canvas`), records that they were fired."""

    # The configuration current when the task runs (set per task, see below).
    durable_runner: Callable[[], ProcessServices]

    def after_return(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self.request, canvas.FIRING_ATTRIBUTE, None) is not None:
            canvas.confirm_firing(self, self.durable_runner())


def _run_options(task: Task[Any, Any], spec: WorkflowSpec, current: ProcessServices) -> RunOptions:
    """How one delivery of ``task`` runs its workflow: its dispatch generation is the
    message's retry count, and its executor the worker node (queues' worker_concurrency
    counts per node)."""
    return RunOptions(
        inline_retries=False,
        generation=int(task.request.retries or 0),
        max_countdown_seconds=current.max_countdown_seconds,
        max_recovery_attempts=spec.max_recovery_attempts,
        executor_id=task.request.hostname or None,
    )


def register_workflow_task(
    app: Celery, spec: WorkflowSpec, runner: Callable[[], ProcessServices]
) -> Task[Any, Any] | None:
    """Registers the Celery task that executes ``spec`` (once per app and name).

    ``runner`` returns the configuration of the moment the task runs, not of the moment
    it was registered (Celery keeps the first task of a name).
    """
    retry_log.install()
    unknown_tasks.install()
    registered = _registered.setdefault(app, set())
    if spec.name in registered:
        return None
    registered.add(spec.name)

    def execute_workflow(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        current = runner()
        workflow_id = _workflow_id(task, spec, current, args)
        options = _run_options(task, spec, current)
        engine = current.worker_engine()
        try:
            result = engine.run(workflow_id, options)
        except RescheduleWorkflow as signal:
            if _parked_for_a_callback(task, signal):
                # Ends as a plain return: a Retry costs a traceback pickled to the pool's
                # parent, and nothing would ever run that retry.
                return retry_log.routine_return(task.request.id, f"parked: {signal.reason}")
            raise _retry(task, signal) from None
        except DBOSSystemDatabaseError as error:
            logger.warning("Workflow %s: %s; retrying", workflow_id, error)
            raise task.retry(
                countdown=DATABASE_RETRY_SECONDS, exc=error, max_retries=None
            ) from None
        except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as error:
            # Workflow code stopped by a BaseException of its own (gevent's Timeout, a
            # custom abort): the execution ends without an outcome, as in DBOS, and the
            # recovery sweep runs it again. Raised on, it escapes Celery's tracer in a
            # threads pool and leaves the message neither acknowledged nor rejected: a
            # prefetch slot lost for good (two such messages stopped a 2-slot worker).
            logger.warning(
                "Workflow %s stopped by %r without an outcome; the recovery sweep runs it again",
                workflow_id,
                error,
            )
            raise Ignore() from error
        return _task_result(task, workflow_id, options, result, current)

    return _as_task(app, spec, runner, execute_workflow)


def _workflow_id(
    task: Task[Any, Any], spec: WorkflowSpec, current: ProcessServices, args: tuple[Any, ...]
) -> str:
    """The workflow a delivery runs: our message's argument, or the workflow a canvas
    message starts (its task id). A canvas message that cannot reach PostgreSQL is
    retried as it is: its callbacks must not fire for a workflow that never ran."""
    if canvas.is_workflow_message(task):
        return str(args[0])
    try:
        return canvas.start_from_canvas(task, spec, current)
    except DBOSSystemDatabaseError as error:
        logger.warning("Workflow %s from a canvas: %s; retrying", task.request.id, error)
        raise task.retry(countdown=DATABASE_RETRY_SECONDS, exc=error, max_retries=None) from None


def _as_task(
    app: Celery,
    spec: WorkflowSpec,
    runner: Callable[[], ProcessServices],
    execute_workflow: Callable[..., Any],
) -> Task[Any, Any]:
    """``execute_workflow`` registered as the workflow's Celery task, named after it."""
    execute_workflow.__name__ = spec.name.rpartition(".")[2] or "workflow"
    execute_workflow.__qualname__ = spec.name
    execute_workflow.__module__ = spec.function.__module__
    execute_workflow.__doc__ = spec.function.__doc__
    decorate = cast(
        Callable[[Callable[..., Any]], "Task[Any, Any]"],
        # Not shared: a workflow's task belongs to its configuration's app, not to every
        # app the process creates later (a re-configured DBOS builds a new one).
        app.task(
            name=spec.name,
            bind=True,
            shared=False,
            base=WorkflowTask,
            durable_runner=staticmethod(runner),
            **WORKFLOW_TASK_OPTIONS,
        ),
    )
    return decorate(execute_workflow)


def _parked_for_a_callback(task: Task[Any, Any], signal: RescheduleWorkflow) -> bool:
    """True for a delivery of our own message (no canvas callbacks to fire) that parked
    its workflow until a Celery task's callback runs it on, in an app without a result
    backend (with one, the return would read as the workflow's result)."""
    return (
        signal.ended_by_callback
        and signal.parked
        and isinstance(task.backend, DisabledBackend)
        and canvas.is_workflow_message(task)
    )


def _retry(task: Task[Any, Any], signal: RescheduleWorkflow) -> Retry:
    """The Celery retry that runs the workflow again when its wait is over."""
    if signal.parked and signal.due_at_epoch_ms is not None:
        # Too long for the broker: the sweep publishes it when due. Raising Retry
        # without publishing still marks the task RETRY (and Flower shows the reason
        # and when). No message carries an eta here: the reason says when.
        when = dt.datetime.fromtimestamp(signal.due_at_epoch_ms / 1000, tz=dt.UTC)
        parked = StepRetry(f"{signal.reason} (parked until {when.isoformat(timespec='seconds')})")
        retry = Retry(exc=parked, when=when)
    else:
        # throw=False: the Retry is returned (published already) for the caller to raise.
        retry = task.retry(
            countdown=signal.countdown_seconds,
            exc=StepRetry(signal.reason),
            max_retries=None,
            throw=False,
        )
    return retry_log.mark_routine(task.request.id, retry) if signal.routine else retry


def _task_result(
    task: Task[Any, Any],
    workflow_id: str,
    options: RunOptions,
    result: RunResult,
    current: ProcessServices,
) -> Any:
    """The task's return value for an execution that did not reschedule.

    The delivery that completes a workflow a canvas started, or that finds it finished,
    fires the canvas's callbacks (Celery does, as the task returns or raises).
    """
    if result.outcome == "throttled":
        # Its queue's limits hold it ENQUEUED: ask again later (a Celery retry).
        raise retry_log.mark_routine(
            task.request.id,
            task.retry(
                countdown=_throttle_countdown(result.wait_seconds, options.max_countdown_seconds),
                exc=QueueWait(f"queue limits hold workflow {workflow_id}"),
                max_retries=None,
                throw=False,
            ),
        )
    if result.outcome == "version" and result.wait_seconds:
        # Another version's, and a worker of it is alive: back to the queue, for one
        # of its workers (Flower shows the retry and why).
        raise retry_log.mark_routine(
            task.request.id,
            task.retry(
                countdown=result.wait_seconds * random.uniform(1.0, 1.5),
                exc=VersionWait(
                    f"workflow {workflow_id} runs on application version "
                    f"{result.app_version}; this worker runs {current.application_version}"
                ),
                max_retries=None,
                throw=False,
            ),
        )
    if result.outcome in _FINISHED:
        firing = canvas.claim_firing(task, current, workflow_id)
        if firing is not None:
            return canvas.recorded_outcome(firing, current, workflow_id)
    if result.outcome != "completed":
        _log_ignored(workflow_id, options.generation or 0, result)
        raise Ignore()
    if result.in_canvas:
        canvas.claim_firing(task, current, workflow_id)
    if result.error is not None:
        raise result.error
    return to_jsonable(result.output)


# Outcomes of a delivery that found the workflow ended without it.
_FINISHED = frozenset({"finished", "cancelled", "exceeded"})


def _throttle_countdown(wait_seconds: float, max_countdown_seconds: float | None) -> float:
    # Spread out the workflows that wait for the same free slot. A wait longer than the
    # broker may hold (a long rate-limit period) asks again sooner instead: the queue's
    # admission is re-checked then, so nothing rides the broker past its limit.
    countdown = wait_seconds * random.uniform(1.0, 1.5) + 0.05
    if max_countdown_seconds is not None:
        countdown = min(countdown, max_countdown_seconds)
    return countdown


def _log_ignored(workflow_id: str, generation: int, result: RunResult) -> None:
    # The message is acknowledged and the task's state left alone (Celery's Ignore).
    outcome, status = result.outcome, result.status
    if outcome == "version":
        logger.warning(
            "Workflow %s runs on application version %s and no worker of that version "
            "is running: parked until one starts (or fork it to this version)",
            workflow_id,
            result.app_version,
        )
    elif outcome == "missing":
        logger.warning("Workflow %s does not exist: message dropped", workflow_id)
    elif outcome == "cancelled":
        logger.info("Workflow %s was cancelled: stopped at a step boundary", workflow_id)
    elif outcome == "exceeded":
        logger.error(
            "Workflow %s is now MAX_RECOVERY_ATTEMPTS_EXCEEDED: its executions died too "
            "often; it will not run again unless resumed",
            workflow_id,
        )
    else:
        logger.info(
            "Workflow %s: delivery %d ignored (%s, status %s)",
            workflow_id,
            generation,
            outcome,
            status,
        )
