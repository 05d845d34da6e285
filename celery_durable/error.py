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

from enum import IntEnum
from typing import Any


class DBOSErrorCode(IntEnum):
    """DBOS Transact 3.4's numeric error codes, used in ``str()`` of the errors.

    An ``IntEnum`` with DBOS's members and values: ``DBOSErrorCode.NotAuthorized.value``
    (DBOS's spelling) and ``DBOSErrorCode.NotAuthorized == 8`` both hold, and an error's
    ``dbos_error_code`` is the plain ``int``, as in DBOS.
    """

    ConflictingIDError = 1
    RecoveryError = 2
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
    PatchNondeterminism = 15
    StreamTimeout = 16
    StreamNondeterminism = 17
    StepTimeout = 18
    QueryTimeout = 26
    WorkflowIDInUse = 27
    StepNondeterminism = 28


class DBOSException(Exception):
    """Root of every error celery_durable raises on purpose.

    Attributes:
        message: The human-readable message (without the code prefix).
        dbos_error_code: DBOS's numeric code, when the error has one.
    """

    def __init__(self, message: str, dbos_error_code: int | None = None) -> None:
        self.message = message
        self.dbos_error_code = None if dbos_error_code is None else int(dbos_error_code)
        super().__init__(message)

    def __str__(self) -> str:
        return _describe(self.message, self.dbos_error_code)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message, self.dbos_error_code))


def _describe(message: str, code: int | None) -> str:
    # As DBOS: "DBOS Error 5: ..." with a code, "DBOS Error: ..." without one.
    return f"DBOS Error: {message}" if code is None else f"DBOS Error {code}: {message}"


class DBOSBaseException(BaseException):
    """A DBOS error that workflow code must not catch by accident (``except Exception:``
    lets it through), as in DBOS Transact.

    celery_durable's own signals of this kind (a cancelled workflow stopping, say) live
    in ``celery_durable.core.signals`` and do not derive from it; this class and its
    subclasses exist so that a port's ``except`` clauses and imports keep working.
    """

    def __init__(self, message: str, dbos_error_code: int | None = None) -> None:
        self.message = message
        self.dbos_error_code = None if dbos_error_code is None else int(dbos_error_code)
        super().__init__(message)

    def __str__(self) -> str:
        return _describe(self.message, self.dbos_error_code)

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
    """A workflow name that no process has registered.

    DBOS 3.4's parameters: ``workflow_id`` (here, the workflow's name or id the caller
    names, also ``workflow_name``) and ``message`` (also ``detail``).
    """

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        self.workflow_id = self.workflow_name = workflow_id
        self.detail = message
        super().__init__(
            message or f"Workflow function {workflow_id} is not registered",
            DBOSErrorCode.WorkflowFunctionNotFound,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.detail))


class DBOSNonExistentWorkflowError(DBOSException):
    """No workflow with this id exists.

    DBOS 3.4's parameters: ``destination`` says which role the id had (for example
    ``"`send` destination"``: "Non-existent `send` destination workflow ID: ...") and
    ``destination_id`` is the id (also ``workflow_id``). With one argument, it is the
    id: "Workflow ... does not exist" (``destination`` is then None).
    """

    def __init__(self, destination: str, destination_id: str | None = None) -> None:
        if destination_id is None:  # our one-argument form: the id alone
            destination_id, role = destination, None
        else:
            role = destination
        self.workflow_id = self.destination_id = destination_id
        self.destination = role
        message = (
            f"Workflow {destination_id} does not exist"
            if role is None
            else f"Non-existent {role} workflow ID: {destination_id}"
        )
        super().__init__(message, DBOSErrorCode.NonExistentWorkflowError)

    def __reduce__(self) -> Any:
        if self.destination is None:
            return (self.__class__, (self.destination_id,))
        return (self.__class__, (self.destination, self.destination_id))


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


class DBOSWorkflowIDInUseError(DBOSException):
    """An enqueue with ``workflow_id_reuse_policy="reject"`` found its id in use."""

    def __init__(self, workflow_id: str, workflow_status: str, workflow_name: str) -> None:
        self.workflow_id = workflow_id
        self.workflow_status = workflow_status
        self.workflow_name = workflow_name
        super().__init__(
            f"Workflow ID {workflow_id} is already in use by workflow {workflow_name} "
            f"with status {workflow_status}.",
            DBOSErrorCode.WorkflowIDInUse,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.workflow_status, self.workflow_name))


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


DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded = DBOSWorkflowMaxRecoveryAttemptsExceededError
"""DBOS Transact 3.4's name for
[DBOSWorkflowMaxRecoveryAttemptsExceededError][celery_durable.error.DBOSWorkflowMaxRecoveryAttemptsExceededError]
(the same class)."""


# -- DBOS Transact 3.4's other error classes --------------------------------------------
#
# Importable and catchable under their 3.4 names, with DBOS's constructors, codes and
# messages (without its links to its documentation), so that a port's imports and except
# clauses work. Each docstring says whether celery_durable raises it today.


class DBOSQueryTimeoutError(DBOSException):
    """An observability query exceeded its statement timeout (not raised by
    celery_durable today: its queries have no statement timeout)."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"This query was cancelled after exceeding its {timeout_seconds:g}s statement timeout.",
            DBOSErrorCode.QueryTimeout,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.timeout_seconds,))


class DBOSRecoveryError(DBOSException):
    """Recovering a workflow failed (not raised by celery_durable today: recovery
    republishes the workflow, and a failure is logged and retried by the next sweep)."""

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        self.workflow_id = workflow_id
        self.detail = message
        super().__init__(
            f"Recovery error for workflow ID {workflow_id}: {message}",
            DBOSErrorCode.RecoveryError,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.detail))


class MaxRecoveryAttemptsExceededError(DBOSException):
    """A workflow was started or recovered more often than its
    ``max_recovery_attempts`` allows (celery_durable marks it
    ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``; waiting on it raises
    [DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded][celery_durable.error.DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded])."""

    def __init__(self, wf_id: str, max_retries: int | None = None) -> None:
        self.workflow_id = wf_id
        self.max_retries = max_retries
        limit = "its maximum" + (f" of {max_retries}" if max_retries is not None else " number of")
        super().__init__(
            f"Workflow {wf_id} has exceeded {limit} execution or recovery attempts. Further "
            "attempts to execute or recover it will fail.",
            DBOSErrorCode.MaxRecoveryAttemptsExceeded,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.max_retries))


class DBOSStepTimeoutError(DBOSException):
    """A step was cancelled after exceeding its timeout (not raised by celery_durable
    today: ``@DBOS.step(timeout_seconds=)`` is not supported yet)."""

    def __init__(self, step_name: str, timeout_seconds: float) -> None:
        self.step_name = step_name
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"Step {step_name} was cancelled after exceeding its timeout of "
            f"{timeout_seconds} seconds",
            DBOSErrorCode.StepTimeout,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.step_name, self.timeout_seconds))


class DBOSStepNondeterminismError(DBOSException):
    """One execution recorded the same step twice with different results (not raised
    by celery_durable today)."""

    def __init__(self, workflow_id: str, step_id: int) -> None:
        self.workflow_id = workflow_id
        self.step_id = step_id
        super().__init__(
            f"Step {step_id} of workflow {workflow_id} was recorded twice by the same "
            "execution with different results. Check that your workflow is deterministic.",
            DBOSErrorCode.StepNondeterminism,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.step_id))


class DBOSPatchNondeterminismError(DBOSException):
    """A patch could not be applied deterministically (not raised by celery_durable
    today: ``DBOS.patch`` is not supported yet)."""

    def __init__(self, workflow_id: str, patch_name: str, details: str) -> None:
        self.workflow_id = workflow_id
        self.patch_name = patch_name
        self.details = details
        super().__init__(
            f"Cannot deterministically apply patch {patch_name} in workflow {workflow_id}: "
            f"{details}. Check that your workflow is deterministic.",
            DBOSErrorCode.PatchNondeterminism,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.patch_name, self.details))


class DBOSStreamNondeterminismError(DBOSException):
    """Concurrent stream reads in one workflow would make its replay depend on
    scheduling (not raised by celery_durable today)."""

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

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id, self.key))


def is_workflow_id_in_use_error(e: BaseException) -> bool:
    """Whether ``e`` is a workflow-id-in-use rejection (by its code, so a replayed error
    that lost its class counts too)."""
    return getattr(e, "dbos_error_code", None) == DBOSErrorCode.WorkflowIDInUse


class DBOSWorkflowCancelledError(DBOSBaseException):
    """The workflow has been cancelled (DBOS's signal; celery_durable stops a cancelled
    workflow with a signal of its own, so this is not raised today)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, DBOSErrorCode.WorkflowCancelled)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message,))


class DBOSWorkflowConflictIDError(DBOSBaseException):
    """This execution no longer owns its workflow (DBOS's signal; celery_durable's
    fencing stops such an execution with a signal of its own, so this is not raised
    today)."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Workflow {workflow_id} is no longer owned by this execution",
            DBOSErrorCode.ConflictingIDError,
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id,))
