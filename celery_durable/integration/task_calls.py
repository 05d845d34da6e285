"""Celery's side of ``DBOS.run_task``: sending an attempt with its callbacks, and the
two callback tasks that record its outcome in PostgreSQL and wake the workflow.

The task runs wherever Celery routes it, on workers that need not import
celery_durable. When it ends, the worker that ran it sends one of our callbacks (its
``link`` or ``link_error``) to the queue of the workflow that called it, where a
workflow worker records the outcome (once: duplicates and a stale attempt's callbacks
record nothing) and publishes the workflow.

A failing task's worker sends ``link_error`` by name with the task id only (Celery's
``BaseBackend._call_task_errbacks`` does so for an errback it has not registered), so
the exception itself does not travel. It is read from the result backend when the app
has one; without one the attempt's error says its details are not available.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from celery import Celery, current_task
from celery.backends.base import DisabledBackend
from celery.canvas import Signature

from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.error import (
    DBOSCeleryTaskError,
    DBOSSerializationError,
    DBOSSystemDatabaseError,
)
from celery_durable.integration import continuation, inline_callbacks
from celery_durable.integration.process import ProcessServices
from celery_durable.store import ReportedOutcome

logger = logging.getLogger("celery_durable.tasks")

SUCCEEDED_TASK = "celery_durable.task_succeeded"
FAILED_TASK = "celery_durable.task_failed"

_CALLBACK_OPTIONS: dict[str, Any] = {
    # A workflow worker killed while recording gets the callback delivered again.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "max_retries": None,
    # Each app's own (its closure finds that app's configuration): not copied into the
    # apps created later, as a shared task would be (DuplicateTaskNameWarning).
    "shared": False,
}

_apps_with_callbacks: weakref.WeakSet[Celery] = weakref.WeakSet()


def dispatch(
    app: Celery, signature: Signature, *, task_id: str, workflow_id: str, function_id: int
) -> None:
    """Sends one attempt: a copy of ``signature`` with task id ``task_id`` and our two
    callbacks added to its own, bound to the workflow's operation and routed to the
    queue of the workflow that calls it (whose workers register them)."""
    queue = _callback_queue(app)
    attempt = signature.clone()
    attempt.link(
        app.signature(SUCCEEDED_TASK, args=(workflow_id, function_id, task_id), queue=queue)
    )
    attempt.link_error(
        app.signature(FAILED_TASK, args=(workflow_id, function_id, attempt.task), queue=queue)
    )
    attempt.apply_async(task_id=task_id)


def _callback_queue(app: Celery) -> str:
    """The queue this workflow's message (or the callback that continues it) came
    from: its workers run our callbacks."""
    continued = continuation.callback_queue()
    if continued is not None:
        return continued
    request = current_task.request if current_task else None
    delivery = getattr(request, "delivery_info", None) or {}
    queue = delivery.get("routing_key")
    return str(queue or app.conf.task_default_queue)


def register_task_callbacks(app: Celery, process: Callable[[], ProcessServices]) -> None:
    """The callback tasks, once per app; ``process`` finds the configuration current
    when one runs."""
    if app in _apps_with_callbacks:
        return
    _apps_with_callbacks.add(app)

    @app.task(name=SUCCEEDED_TASK, bind=True, **_CALLBACK_OPTIONS)
    def task_succeeded(
        task: Any, result: Any, workflow_id: str, function_id: int, task_id: str
    ) -> None:
        services = process()
        output, error = succeeded_outcome(services, result)
        try:
            _record(services, workflow_id, function_id, task_id, output=output, error=error)
        except DBOSSystemDatabaseError as failure:
            raise task.retry(countdown=DATABASE_RETRY_SECONDS, exc=failure) from failure

    def record_success(
        result: Any, workflow_id: str, function_id: int, task_id: str, **where: Any
    ) -> None:
        services = process()
        output, error = succeeded_outcome(services, result)
        record_and_continue(
            services, workflow_id, function_id, task_id, output=output, error=error, **where
        )

    inline_callbacks.install(app, SUCCEEDED_TASK, record_success)

    @app.task(name=FAILED_TASK, bind=True, **_CALLBACK_OPTIONS)
    def task_failed(
        task: Any, task_id: str, workflow_id: str, function_id: int, task_name: str
    ) -> None:
        # Celery puts the failed task's id first (see the module's docstring).
        services = process()
        failure = _failure_of(app, task_name, task_id)
        error = services.serializer.dumps(failure)
        try:
            _record(services, workflow_id, function_id, task_id, output=None, error=error)
        except DBOSSystemDatabaseError as failure:
            raise task.retry(countdown=DATABASE_RETRY_SECONDS, exc=failure) from failure


def _failure_of(app: Celery, name: str, task_id: str) -> DBOSCeleryTaskError:
    """The failed attempt's error, as far as it can be known here."""
    if isinstance(app.backend, DisabledBackend):
        return DBOSCeleryTaskError(
            name, task_id, None, "its error is not available (the app has no result backend)"
        )
    try:
        exception = app.AsyncResult(task_id).result
    except Exception as reading:
        return DBOSCeleryTaskError(
            name, task_id, None, f"its error could not be read from the result backend: {reading!r}"
        )
    if not isinstance(exception, BaseException):
        return DBOSCeleryTaskError(name, task_id, None, f"the result backend holds {exception!r}")
    return DBOSCeleryTaskError(name, task_id, type(exception).__name__, str(exception))


def report_unsent(
    services: ProcessServices,
    workflow_id: str,
    function_id: int,
    task_id: str,
    error: BaseException,
) -> None:
    """An attempt that could not be sent, recorded as failed (as its error callback
    would record it) and its workflow woken.

    Raises:
        DBOSSystemDatabaseError: nothing could be recorded.
    """
    record_and_continue(
        services,
        workflow_id,
        function_id,
        task_id,
        output=None,
        error=services.serializer.dumps(error),
        queue=_callback_queue(services.celery),
        executor_id=None,
    )


def succeeded_outcome(services: ProcessServices, result: Any) -> tuple[str | None, str | None]:
    """A task's result as the (output, error) recorded: one our serializer cannot
    write is the attempt's error."""
    try:
        return services.serializer.dumps(result), None
    except DBOSSerializationError as failure:
        return None, services.serializer.dumps(failure)


def _record(
    services: ProcessServices,
    workflow_id: str,
    function_id: int,
    task_id: str,
    *,
    output: str | None,
    error: str | None,
) -> None:
    """Records the outcome and continues the workflow in this process (a callback
    message's queue is the workflow's: its workers serve it).

    Raises:
        DBOSSystemDatabaseError: the outcome could not be recorded; the callback retries
            (nothing is lost: its message is acknowledged only after).
    """
    request = current_task.request if current_task else None
    delivery = getattr(request, "delivery_info", None) or {}
    record_and_continue(
        services,
        workflow_id,
        function_id,
        task_id,
        output=output,
        error=error,
        queue=str(delivery.get("routing_key") or services.celery.conf.task_default_queue),
        executor_id=getattr(request, "hostname", None),
    )


def record_and_continue(
    services: ProcessServices,
    workflow_id: str,
    function_id: int,
    task_id: str,
    *,
    output: str | None,
    error: str | None,
    queue: str,
    executor_id: str | None,
) -> None:
    """Records attempt ``task_id``'s outcome (once) and, if that woke the workflow,
    runs it on here (``integration/continuation.py``).

    Raises:
        DBOSSystemDatabaseError: the outcome could not be recorded.
    """
    reported = ReportedOutcome(function_id=function_id, task_id=task_id, output=output, error=error)
    try:
        continuation.continue_after_task(
            services, workflow_id, reported, queue=queue, executor_id=executor_id
        )
    except DBOSSystemDatabaseError:
        raise
    except Exception:
        # Recorded or not: a callback that retries finds it recorded; the recovery
        # sweep runs the woken workflow on.
        logger.warning(
            "Workflow %s could not be continued here; the sweep will", workflow_id, exc_info=True
        )
