"""A task's success callback run in the worker that ran the task, when that worker is
one of the calling workflow's own.

``DBOS.run_task`` adds our ``celery_durable.task_succeeded`` callback to the task's
``link``; the worker that runs the task sends it as a message after the task returns,
to the calling workflow's queue. When that worker consumes the queue itself and has
celery_durable configured with the same app, the message would only come back to it:
the callback runs in-process instead, where Celery would publish it. It records the
outcome and continues the workflow as the callback task does
(``task_calls.record_and_continue``), one broker round trip and one task execution
fewer per call.

How: a ``task_prerun`` handler swaps the request's callback (a dict from the message)
for an :class:`InlineCallback`, the same signature whose ``apply_async`` records
instead of publishing. Celery sends a task's single link callback with
``signature(callback).apply_async((result,), ...)``, and ``signature`` clones a
signature object through its own ``clone``. If a Celery version did otherwise, the
callback would be published as a message, as before. The dict content is unchanged, so
a task that retries itself (``self.retry``) sends the same callback on.

Inline only when nothing distinguishes it from the message:

- the task has no other link callback (Celery sends several as a group);
- no time limit applies to the task (the workflow would run within it);
- the result survives the app's serializer (it is round-tripped through it, as the
  message would carry it; an unencodable result is left to Celery, which fails the
  task);
- the outcome can be recorded now (a database that does not answer: the message is
  sent, and its task retries).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, cast

from celery import Celery, Task, current_task
from celery.canvas import Signature
from celery.signals import task_prerun
from kombu import serialization

from celery_durable.error import DBOSSystemDatabaseError

logger = logging.getLogger("celery_durable.tasks")

# Records a task's result and continues its workflow: called with (result, workflow
# id, function id, task id) and the keywords ``queue`` and ``executor_id``; raises
# ``DBOSSystemDatabaseError`` when nothing could be recorded.
Recorder = Callable[..., None]

# The apps whose workers may run the success callback in-process: its task name, and
# what records.
_apps: weakref.WeakKeyDictionary[Celery, tuple[str, Recorder]] = weakref.WeakKeyDictionary()


def install(app: Celery, callback_name: str, record: Recorder) -> None:
    """Runs ``app``'s success callbacks (task ``callback_name``) in-process where they
    may run here (see the module's docstring)."""
    _apps[app] = (callback_name, record)
    task_prerun.connect(_swap_callback, weak=False, dispatch_uid="celery_durable.inline_callback")


def _swap_callback(sender: Any = None, task: Task[Any, Any] | None = None, **_: Any) -> None:
    if task is None:
        return
    request = task.request
    callbacks = request.callbacks
    if not callbacks or len(callbacks) != 1:
        return
    (callback,) = callbacks
    if not isinstance(callback, dict) or isinstance(callback, InlineCallback):
        return
    found = _apps.get(task.app)
    if found is None or callback.get("task") != found[0] or not _may_run_here(task, callback):
        return
    request.callbacks = [InlineCallback.of(callback, task.app)]


def _may_run_here(task: Task[Any, Any], callback: dict[str, Any]) -> bool:
    """A worker's delivery, with no time limit, that consumes the callback's queue."""
    request = task.request
    conf = task.app.conf
    if request.is_eager or not request.delivery_info:
        return False
    if any(request.timelimit or ()) or task.time_limit or task.soft_time_limit:
        return False
    if conf.task_time_limit or conf.task_soft_time_limit:
        return False
    queue = (callback.get("options") or {}).get("queue")
    return bool(queue) and queue in task.app.amqp.queues.consume_from


class InlineCallback(Signature):
    """Our success callback, recorded in-process instead of published."""

    inline_app: Celery

    @classmethod
    def of(cls, callback: dict[str, Any], app: Celery) -> InlineCallback:
        """``callback`` (a signature's dict) as an inline one of ``app``."""
        inline = cls(cast(Any, callback), app=app)
        inline.inline_app = app
        return inline

    def clone(self, *args: Any, **kwargs: Any) -> InlineCallback:
        return InlineCallback.of(super().clone(*args, **kwargs), self.inline_app)

    def apply_async(
        self, args: Any = None, kwargs: Any = None, route_name: Any = None, **options: Any
    ) -> Any:
        if self._record_here(tuple(args or ())):
            return None
        return super().apply_async(args, kwargs, route_name, **options)

    def _record_here(self, args: tuple[Any, ...]) -> bool:
        """Records the outcome and continues the workflow; False: nothing recorded
        (the callback is to be sent as a message)."""
        found = _apps.get(self.inline_app)
        if found is None or len(args) != 1:
            return False
        try:
            (result,) = _as_sent(self.inline_app, args)
            workflow_id, function_id, task_id = self.args
            queue = str(self.options["queue"])
        except Exception:  # Celery's own send fails the same way, and says why
            return False
        request = current_task.request if current_task else None
        try:
            found[1](
                result,
                workflow_id,
                function_id,
                task_id,
                queue=queue,
                executor_id=getattr(request, "hostname", None),
            )
        except DBOSSystemDatabaseError:
            logger.warning("Task %s: its outcome goes as a message, which retries", task_id)
            return False
        return True


def _as_sent(app: Celery, args: tuple[Any, ...]) -> Any:
    """``args`` as the callback's message would carry them (the app's serializer)."""
    content_type, encoding, data = serialization.dumps(args, app.conf.task_serializer)
    return serialization.loads(data, content_type, encoding)
