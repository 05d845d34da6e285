"""Errors of celery_durable.

Everything users may catch derives from
[DBOSException][celery_durable.error.DBOSException], with DBOS Transact's names and
messages. Control-flow signals that must pass through user code (an
``except Exception:`` in a workflow must not swallow them) derive from
``BaseException`` and live in ``celery_durable.core.signals``.

Every exception here defines ``__reduce__`` so that it survives pickling, and is
constructible from the arguments ``__reduce__`` returns so that the JSON serializer can
rebuild it on replay.
"""

from __future__ import annotations

from typing import Any


class DBOSErrorCode:
    """DBOS Transact 3.4's numeric error codes, used in ``str()`` of the errors."""

    ConflictingIDError = 1
    InitializationError = 3
    WorkflowFunctionNotFound = 4
    NonExistentWorkflowError = 5
    MaxRecoveryAttemptsExceeded = 6
    MaxStepRetriesExceeded = 7
    NotAuthorized = 8
    ConflictingWorkflowError = 9
    WorkflowCancelled = 10
    UnexpectedStep = 11
    QueueDeduplicated = 12
    AwaitedWorkflowCancelled = 13
    AwaitedWorkflowMaxRecoveryAttemptsExceeded = 14
    StreamTimeout = 16
    StreamNondeterminism = 17


class DBOSException(Exception):
    """Root of every error celery_durable raises on purpose.

    Attributes:
        message: The human-readable message (without the code prefix).
        dbos_error_code: DBOS's numeric code, when the error has one.
    """

    def __init__(self, message: str, dbos_error_code: int | None = None) -> None:
        self.message = message
        self.dbos_error_code = dbos_error_code
        super().__init__(message)

    def __str__(self) -> str:
        # As DBOS: "DBOS Error 5: ..." with a code, "DBOS Error: ..." without one.
        if self.dbos_error_code is not None:
            return f"DBOS Error {self.dbos_error_code}: {self.message}"
        return f"DBOS Error: {self.message}"

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message, self.dbos_error_code))


class DBOSInitializationError(DBOSException):
    """The library is not configured, or configured wrongly."""

    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.InitializationError)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message,))


class DBOSSystemDatabaseError(DBOSException):
    """The system database could not be reached or refused a statement."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message,))


class DBOSSchemaMissingError(DBOSSystemDatabaseError):
    """The database has no celery_durable tables, or older ones than this code needs.

    Only ``DBOS.launch()``, ``celery-durable migrate`` and a starting worker create or
    upgrade them; reading never does.
    """


class DBOSWorkflowFunctionNotFoundError(DBOSException):
    """A workflow name that no process has registered."""

    def __init__(self, workflow_name: str, message: str | None = None) -> None:
        self.workflow_name = workflow_name
        super().__init__(
            message or f"Workflow function {workflow_name} is not registered",
            DBOSErrorCode.WorkflowFunctionNotFound,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_name, self.message))


class DBOSNonExistentWorkflowError(DBOSException):
    """No workflow with this id exists.

    ``destination`` says which role the id had, in DBOS's words (for example
    ``"`send` destination"``: "Non-existent `send` destination workflow ID: ...").
    ``destination_id`` is DBOS's name for the id.
    """

    def __init__(self, workflow_id: str, destination: str | None = None) -> None:
        self.workflow_id = workflow_id
        self.destination_id = workflow_id
        self.destination = destination
        message = (
            f"Workflow {workflow_id} does not exist"
            if destination is None
            else f"Non-existent {destination} workflow ID: {workflow_id}"
        )
        super().__init__(message, DBOSErrorCode.NonExistentWorkflowError)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.destination))


class DBOSNotAuthorizedError(DBOSException):
    """The caller's roles include none of a function's ``@DBOS.required_roles``."""

    def __init__(self, msg: str) -> None:
        self.msg = msg
        super().__init__(msg, DBOSErrorCode.NotAuthorized)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.msg,))


class DBOSConflictingWorkflowError(DBOSException):
    """A workflow id was reused for a different workflow function."""

    def __init__(self, workflow_id: str, message: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Conflicting workflow invocation with the same ID ({workflow_id}): {message}",
            DBOSErrorCode.ConflictingWorkflowError,
        )
        self._detail = message

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self._detail))


class DBOSMaxStepRetriesExceeded(DBOSException):
    """A step failed on every one of its attempts.

    Attributes:
        step_name: The step's name.
        max_retries: The step's ``max_attempts``.
        errors: Every attempt's exception, in order.
    """

    def __init__(self, step_name: str, max_retries: int, errors: list[BaseException]) -> None:
        self.step_name = step_name
        self.max_retries = max_retries
        self.errors = list(errors)
        super().__init__(
            f"Step {step_name} has exceeded its maximum of {max_retries} retries",
            DBOSErrorCode.MaxStepRetriesExceeded,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.step_name, self.max_retries, self.errors))


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

    def __init__(self, task_name: str, task_id: str, error_type: str | None, detail: str) -> None:
        self.task_name = task_name
        self.task_id = task_id
        self.error_type = error_type
        self.detail = detail
        kind = f"{error_type}: " if error_type else ""
        super().__init__(f"Task {task_name}[{task_id}] failed: {kind}{detail}")

    def __reduce__(self) -> Any:
        return (self.__class__, (self.task_name, self.task_id, self.error_type, self.detail))


class DBOSUnexpectedStepError(DBOSException):
    """A replayed workflow called a different step than the one recorded.

    Workflow code must be deterministic outside of steps; this error means it was not
    (or the code changed while the workflow was in flight).
    """

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

    def __reduce__(self) -> Any:
        return (
            self.__class__,
            (self.workflow_id, self.step_id, self.expected_name, self.recorded_name),
        )


class DBOSSerializationError(DBOSException):
    """A value could not be serialized or deserialized."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message,))


class DBOSAwaitedWorkflowCancelledError(DBOSException):
    """The awaited workflow was cancelled."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Awaited workflow {workflow_id} was cancelled",
            DBOSErrorCode.AwaitedWorkflowCancelled,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id,))


class DBOSWorkflowMaxRecoveryAttemptsExceededError(DBOSException):
    """The awaited workflow ended in MAX_RECOVERY_ATTEMPTS_EXCEEDED."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Workflow {workflow_id} has exceeded its maximum number of recovery attempts",
            DBOSErrorCode.AwaitedWorkflowMaxRecoveryAttemptsExceeded,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id,))


class DBOSQueueDeduplicatedError(DBOSException):
    """Another active workflow of the queue has the same deduplication id."""

    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(
            f"Workflow {workflow_id} was deduplicated due to an existing workflow in queue "
            f"{queue_name} with deduplication ID {deduplication_id}.",
            DBOSErrorCode.QueueDeduplicated,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.queue_name, self.deduplication_id))


class DBOSStreamTimeoutError(DBOSException):
    """No value arrived on a stream within the reader's timeout."""

    def __init__(self, workflow_id: str, key: str, timeout_seconds: float) -> None:
        self.workflow_id = workflow_id
        self.key = key
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"No value arrived on stream {key} of workflow {workflow_id} within "
            f"{timeout_seconds} seconds",
            DBOSErrorCode.StreamTimeout,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.key, self.timeout_seconds))


class RecordedError(DBOSException):
    """A recorded exception that could not be rebuilt as its own class on replay.

    Raised in place of an exception whose class cannot be imported or constructed from
    its recorded arguments. It carries the original class's dotted name and message.

    Attributes:
        type_name: ``module:qualname`` of the original exception class.
        original_message: ``str()`` of the original exception.
    """

    def __init__(self, type_name: str, original_message: str) -> None:
        self.type_name = type_name
        self.original_message = original_message
        super().__init__(f"{type_name}: {original_message}")

    def __str__(self) -> str:
        return self.message  # the original exception's words, not a DBOS error's

    def __reduce__(self) -> Any:
        return (self.__class__, (self.type_name, self.original_message))
