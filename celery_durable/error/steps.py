"""Errors of what a workflow's code does: its steps and Celery tasks, replaying them,
patches, and streams."""

from __future__ import annotations

from celery_durable.error.base import DBOSErrorCode, DBOSException


class DBOSMaxStepRetriesExceeded(DBOSException):
    """A step failed on every one of its attempts.

    Attributes:
        step_name: The step's name.
        max_retries: The step's ``max_attempts``.
        errors: Every attempt's exception, in order.
    """

    _constructed_from = ("step_name", "max_retries", "errors")

    def __init__(self, step_name: str, max_retries: int, errors: list[BaseException]) -> None:
        self.step_name = step_name
        self.max_retries = max_retries
        self.errors = list(errors)
        super().__init__(
            f"Step {step_name} has exceeded its maximum of {max_retries} retries",
            DBOSErrorCode.MaxStepRetriesExceeded,
        )


class DBOSCeleryTaskError(DBOSException):
    """A Celery task called with ``DBOS.run_task``/``DBOS.start_task`` failed (one attempt).

    The task ran on a worker that may not import celery_durable: its exception is
    carried as its type's name and message, not rebuilt.

    Attributes:
        task_name: The task's registered name.
        task_id: The attempt's Celery task id.
        error_type: The exception's class name (``TimeoutError`` when no outcome came
            in time), or None when the error is not available (see docs/celery-tasks.md).
        detail: The exception's message, or why it is not available.
    """

    _constructed_from = ("task_name", "task_id", "error_type", "detail")

    def __init__(self, task_name: str, task_id: str, error_type: str | None, detail: str) -> None:
        self.task_name = task_name
        self.task_id = task_id
        self.error_type = error_type
        self.detail = detail
        kind = f"{error_type}: " if error_type else ""
        super().__init__(f"Task {task_name}[{task_id}] failed: {kind}{detail}")


class DBOSUnexpectedStepError(DBOSException):
    """A replayed workflow called a different step than the one recorded.

    Workflow code must be deterministic outside of steps; this error means it was not
    (or the code changed while the workflow was in flight).
    """

    _constructed_from = ("workflow_id", "step_id", "expected_name", "recorded_name")

    def __init__(self, workflow_id: str, step_id: int, expected_name: str, recorded_name: str):
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.expected_name = expected_name
        self.recorded_name = recorded_name
        super().__init__(
            f"During execution of workflow {workflow_id} step {step_id}, function "
            f"{recorded_name} was recorded when {expected_name} was expected. Check that "
            "your workflow is deterministic.",
            DBOSErrorCode.UnexpectedStep,
        )


class DBOSStepTimeoutError(DBOSException):
    """A step was cancelled after exceeding its timeout (not raised by celery_durable
    today: ``@DBOS.step(timeout_seconds=)`` is not supported yet)."""

    _constructed_from = ("step_name", "timeout_seconds")

    def __init__(self, step_name: str, timeout_seconds: float) -> None:
        self.step_name = step_name
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"Step {step_name} was cancelled after exceeding its timeout of "
            f"{timeout_seconds} seconds",
            DBOSErrorCode.StepTimeout,
        )


class DBOSStepNondeterminismError(DBOSException):
    """One execution recorded the same step twice with different results (not raised
    by celery_durable today)."""

    _constructed_from = ("workflow_id", "step_id")

    def __init__(self, workflow_id: str, step_id: int) -> None:
        self.workflow_id = workflow_id
        self.step_id = step_id
        super().__init__(
            f"Step {step_id} of workflow {workflow_id} was recorded twice by the same "
            "execution with different results. Check that your workflow is deterministic.",
            DBOSErrorCode.StepNondeterminism,
        )


class DBOSPatchNondeterminismError(DBOSException):
    """A patch could not be applied deterministically: ``DBOS.patch_async`` (or
    ``deprecate_patch_async``) called concurrently with other operations of the
    workflow."""

    _constructed_from = ("workflow_id", "patch_name", "details")

    def __init__(self, workflow_id: str, patch_name: str, details: str) -> None:
        self.workflow_id = workflow_id
        self.patch_name = patch_name
        self.details = details
        super().__init__(
            f"Cannot deterministically apply patch {patch_name} in workflow {workflow_id}: "
            f"{details}. Check that your workflow is deterministic.",
            DBOSErrorCode.PatchNondeterminism,
        )


class DBOSStreamTimeoutError(DBOSException):
    """No value arrived on a stream within the reader's timeout."""

    _constructed_from = ("workflow_id", "key", "timeout_seconds")

    def __init__(self, workflow_id: str, key: str, timeout_seconds: float) -> None:
        self.workflow_id = workflow_id
        self.key = key
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"No value arrived on stream {key} of workflow {workflow_id} within "
            f"{timeout_seconds} seconds",
            DBOSErrorCode.StreamTimeout,
        )


class DBOSStreamNondeterminismError(DBOSException):
    """Concurrent stream reads in one workflow would make its replay depend on
    scheduling (not raised by celery_durable today)."""

    _constructed_from = ("workflow_id", "key")

    def __init__(self, workflow_id: str, key: str) -> None:
        self.workflow_id = workflow_id
        self.key = key
        super().__init__(
            f"Cannot deterministically read stream {key} in workflow {workflow_id}: another "
            "stream read in the same workflow is still in progress, so which read records "
            "which value would depend on task scheduling. Read streams from sequential "
            "workflow code, or read them from a step.",
            DBOSErrorCode.StreamNondeterminism,
        )
