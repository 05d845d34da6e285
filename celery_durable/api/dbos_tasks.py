"""The ``DBOS`` facade's Celery tasks called from workflow code (a part of ``DBOS``).

Not DBOS Transact's (it knows nothing of Celery): the options are a step's
(``@DBOS.step``), plus each attempt's ``timeout_seconds``. See docs/celery-tasks.md.
"""

from __future__ import annotations

from typing import Any

from celery_durable.service import task_calls
from celery_durable.service.task_calls import TaskHandle, TaskOrSignature


class WorkflowTasks:
    """``run_task``/``start_task`` (and their async twins) on ``DBOS``."""

    @staticmethod
    def run_task(
        task: TaskOrSignature,
        *,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        timeout_seconds: float | None = None,
    ) -> Any:
        """Runs an existing Celery task (``send_invoice.s(order_id)``) as a durable
        operation of this workflow and returns its result (or raises its error).

        Only in workflow code run by a worker. The task runs where Celery routes it, on
        workers that need not import celery_durable; this workflow frees its worker
        until the task's callback records the outcome in PostgreSQL (no result backend
        needed). Each attempt is sent once, under a task id derived from the workflow id
        and the operation number; a replay never sends it again. An attempt fails when
        the task raises or when ``timeout_seconds`` pass without an outcome (a lost
        message); failed attempts are retried as a step's are, and once every attempt
        failed ``DBOSMaxStepRetriesExceeded`` carries each attempt's error.
        """
        return task_calls.run_task(
            task,
            retries_allowed=retries_allowed,
            interval_seconds=interval_seconds,
            max_attempts=max_attempts,
            backoff_rate=backoff_rate,
            timeout_seconds=timeout_seconds,
        )

    @staticmethod
    async def run_task_async(
        task: TaskOrSignature,
        *,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        timeout_seconds: float | None = None,
    ) -> Any:
        """``run_task`` for ``async def`` workflows."""
        return task_calls.run_task(
            task,
            retries_allowed=retries_allowed,
            interval_seconds=interval_seconds,
            max_attempts=max_attempts,
            backoff_rate=backoff_rate,
            timeout_seconds=timeout_seconds,
        )

    @staticmethod
    def start_task(
        task: TaskOrSignature,
        *,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        timeout_seconds: float | None = None,
    ) -> TaskHandle:
        """Sends an existing Celery task as ``run_task`` does, without waiting: await
        the returned handle's ``get_result()`` later in this workflow. Started tasks
        run in parallel (fan-out); awaiting each handle gathers every outcome, failures
        included (fan-in)."""
        return task_calls.start_task(
            task,
            retries_allowed=retries_allowed,
            interval_seconds=interval_seconds,
            max_attempts=max_attempts,
            backoff_rate=backoff_rate,
            timeout_seconds=timeout_seconds,
        )

    @staticmethod
    async def start_task_async(
        task: TaskOrSignature,
        *,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        timeout_seconds: float | None = None,
    ) -> TaskHandle:
        """``start_task`` for ``async def`` workflows."""
        return task_calls.start_task(
            task,
            retries_allowed=retries_allowed,
            interval_seconds=interval_seconds,
            max_attempts=max_attempts,
            backoff_rate=backoff_rate,
            timeout_seconds=timeout_seconds,
        )
