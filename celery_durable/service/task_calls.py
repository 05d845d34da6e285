"""``DBOS.run_task`` and ``DBOS.start_task``: an existing Celery task (or a signature
of one) called durably from workflow code, and the handle a started one returns.

The task runs where Celery routes it; the workflow frees its worker while it waits and
its outcome is checkpointed in PostgreSQL (``engine/task_calls.py`` has the states of
a call, ``integration/task_calls.py`` the callbacks). Each ``_async`` twin is the same
operation: sending a task does not block, and waiting unwinds the workflow.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.canvas import Signature

from celery_durable.core.retry import RetryPolicy
from celery_durable.engine import task_calls
from celery_durable.engine.context import current_workflow
from celery_durable.error import DBOSException

# What run_task and start_task take: a task, or one task's signature.
TaskOrSignature = Signature | Task[Any, Any]


class TaskHandle:
    """A Celery task started by ``DBOS.start_task`` in a workflow: wait for it with
    :meth:`get_result` (or :meth:`get_result_async`) in the same workflow."""

    def __init__(self, workflow_id: str, function_id: int, call: task_calls.TaskCall) -> None:
        self._workflow_id = workflow_id
        self._function_id = function_id
        self._call = call

    @property
    def task_name(self) -> str:
        return self._call.name

    @property
    def function_id(self) -> int:
        """The call's operation number in its workflow (``DBOS.list_workflow_steps``)."""
        return self._function_id

    def get_result(self) -> Any:
        """The task's return value, or its error raised (``DBOSCeleryTaskError``, or
        ``DBOSMaxStepRetriesExceeded`` once every attempt failed)."""
        workflow = current_workflow.get()
        if workflow is None or workflow.workflow_id != self._workflow_id:
            raise DBOSException(
                f"The handle of task {self._call.name} can be awaited only in the workflow "
                f"that started it ({self._workflow_id})"
            )
        return task_calls.result(workflow, self._function_id, self._call)

    async def get_result_async(self) -> Any:
        return self.get_result()


def start_task(
    task: TaskOrSignature,
    *,
    retries_allowed: bool = True,
    interval_seconds: float = 1.0,
    max_attempts: int = 3,
    backoff_rate: float = 2.0,
    timeout_seconds: float | None = None,
) -> TaskHandle:
    call = _call_of(
        task,
        RetryPolicy(
            retries_allowed=retries_allowed,
            max_attempts=max_attempts,
            interval_seconds=interval_seconds,
            backoff_rate=backoff_rate,
        ),
        timeout_seconds,
    )
    function_id = task_calls.start(call)
    workflow = current_workflow.get()
    assert workflow is not None  # task_calls.start checked it
    return TaskHandle(workflow.workflow_id, function_id, call)


def run_task(
    task: TaskOrSignature,
    *,
    retries_allowed: bool = True,
    interval_seconds: float = 1.0,
    max_attempts: int = 3,
    backoff_rate: float = 2.0,
    timeout_seconds: float | None = None,
) -> Any:
    call = _call_of(
        task,
        RetryPolicy(
            retries_allowed=retries_allowed,
            max_attempts=max_attempts,
            interval_seconds=interval_seconds,
            backoff_rate=backoff_rate,
        ),
        timeout_seconds,
    )
    return task_calls.run(call)


def _call_of(
    task: TaskOrSignature, policy: RetryPolicy, timeout_seconds: float | None
) -> task_calls.TaskCall:
    """Checks what the workflow asked for before anything is recorded."""
    signature = task.s() if isinstance(task, Task) else task
    if not isinstance(signature, Signature) or signature.subtask_type is not None:
        raise DBOSException(
            "run_task/start_task take one task or one task's signature (task.s(...)), "
            f"not {task!r}; start several with start_task and await their handles"
        )
    if timeout_seconds is not None and (
        not isinstance(timeout_seconds, int | float)
        or isinstance(timeout_seconds, bool)
        or timeout_seconds <= 0
    ):
        raise DBOSException(
            f"timeout_seconds must be a number > 0 or None, not {timeout_seconds!r}"
        )
    return task_calls.TaskCall(
        name=str(signature.task),
        signature=signature,
        policy=policy,
        timeout_seconds=None if timeout_seconds is None else float(timeout_seconds),
    )
