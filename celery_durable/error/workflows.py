"""Errors about a workflow as a whole: its function and id, waiting on it, its queue,
its recovery, and DBOS's signals to its code."""

from __future__ import annotations

from celery_durable.error.base import DBOSBaseException, DBOSErrorCode, DBOSException


class DBOSWorkflowFunctionNotFoundError(DBOSException):
    """A workflow name that no process has registered.

    DBOS 3.4's parameters: ``workflow_id`` (here, the workflow's name or id the caller
    names, also ``workflow_name``) and ``message`` (also ``detail``).
    """

    # Recorded as before DBOS 3.4's names: (the name, the whole message).
    _constructed_from = ("workflow_id", "message")

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        self.workflow_id = self.workflow_name = workflow_id
        self.detail = message
        super().__init__(
            message or f"Workflow function {workflow_id} is not registered",
            DBOSErrorCode.WorkflowFunctionNotFound,
        )


# The roles an id has in the errors celery_durable records ("Non-existent `send`
# destination workflow ID: ..."): how a record, which names the id first, is told from
# DBOS 3.4's argument order, which names the role first.
_RECORDED_ROLES = frozenset({"`send` destination", "target"})


class DBOSNonExistentWorkflowError(DBOSException):
    """No workflow with this id exists.

    DBOS 3.4's parameters: ``destination`` says which role the id had (for example
    ``"`send` destination"``: "Non-existent `send` destination workflow ID: ...") and
    ``destination_id`` is the id (also ``workflow_id``). With one argument, it is the
    id: "Workflow ... does not exist" (``destination`` is then None).

    A recorded one (a checkpoint, a pickle) is rebuilt from ``(workflow_id,
    destination)``, the order celery_durable has always recorded: a second argument
    that is one of the roles it records marks that order.
    """

    _constructed_from = ("workflow_id", "destination")

    def __init__(self, destination: str, destination_id: str | None = None) -> None:
        if destination_id is None:  # the one-argument form: the id alone
            destination_id, role = destination, None
        elif destination_id in _RECORDED_ROLES and destination not in _RECORDED_ROLES:
            destination_id, role = destination, destination_id  # a record: (id, role)
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


class DBOSConflictingWorkflowError(DBOSException):
    """A workflow id was reused for a different workflow function."""

    _constructed_from = ("workflow_id", "_detail")

    def __init__(self, workflow_id: str, message: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Conflicting workflow invocation with the same ID ({workflow_id}): {message}",
            DBOSErrorCode.ConflictingWorkflowError,
        )
        self._detail = message


class DBOSAwaitedWorkflowCancelledError(DBOSException):
    """The awaited workflow was cancelled."""

    _constructed_from = ("workflow_id",)

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Awaited workflow {workflow_id} was cancelled",
            DBOSErrorCode.AwaitedWorkflowCancelled,
        )


class DBOSWorkflowMaxRecoveryAttemptsExceededError(DBOSException):
    """The awaited workflow ended in MAX_RECOVERY_ATTEMPTS_EXCEEDED."""

    _constructed_from = ("workflow_id",)

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Workflow {workflow_id} has exceeded its maximum number of recovery attempts",
            DBOSErrorCode.AwaitedWorkflowMaxRecoveryAttemptsExceeded,
        )


DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded = DBOSWorkflowMaxRecoveryAttemptsExceededError
"""DBOS Transact 3.4's name for
[DBOSWorkflowMaxRecoveryAttemptsExceededError][celery_durable.error.DBOSWorkflowMaxRecoveryAttemptsExceededError]
(the same class)."""


class DBOSQueueDeduplicatedError(DBOSException):
    """Another active workflow of the queue has the same deduplication id."""

    _constructed_from = ("workflow_id", "queue_name", "deduplication_id")

    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(
            f"Workflow {workflow_id} was deduplicated due to an existing workflow in queue "
            f"{queue_name} with deduplication ID {deduplication_id}.",
            DBOSErrorCode.QueueDeduplicated,
        )


class DBOSWorkflowIDInUseError(DBOSException):
    """An enqueue with ``workflow_id_reuse_policy="reject"`` found its id in use."""

    _constructed_from = ("workflow_id", "workflow_status", "workflow_name")

    def __init__(self, workflow_id: str, workflow_status: str, workflow_name: str) -> None:
        self.workflow_id = workflow_id
        self.workflow_status = workflow_status
        self.workflow_name = workflow_name
        super().__init__(
            f"Workflow ID {workflow_id} is already in use by workflow {workflow_name} "
            f"with status {workflow_status}.",
            DBOSErrorCode.WorkflowIDInUse,
        )


def is_workflow_id_in_use_error(e: BaseException) -> bool:
    """Whether ``e`` is a workflow-id-in-use rejection (by its code, so a replayed error
    that lost its class counts too)."""
    return getattr(e, "dbos_error_code", None) == DBOSErrorCode.WorkflowIDInUse


class DBOSRecoveryError(DBOSException):
    """Recovering a workflow failed (not raised by celery_durable today: recovery
    republishes the workflow, and a failure is logged and retried by the next sweep)."""

    _constructed_from = ("workflow_id", "detail")

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        self.workflow_id = workflow_id
        self.detail = message
        super().__init__(
            f"Recovery error for workflow ID {workflow_id}: {message}",
            DBOSErrorCode.RecoveryError,
        )


class MaxRecoveryAttemptsExceededError(DBOSException):
    """A workflow was started or recovered more often than its
    ``max_recovery_attempts`` allows (celery_durable marks it
    ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``; waiting on it raises
    [DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded][celery_durable.error.DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded])."""

    _constructed_from = ("workflow_id", "max_retries")

    def __init__(self, wf_id: str, max_retries: int | None = None) -> None:
        self.workflow_id = wf_id
        self.max_retries = max_retries
        limit = "its maximum" + (f" of {max_retries}" if max_retries is not None else " number of")
        super().__init__(
            f"Workflow {wf_id} has exceeded {limit} execution or recovery attempts. Further "
            "attempts to execute or recover it will fail.",
            DBOSErrorCode.MaxRecoveryAttemptsExceeded,
        )


class DBOSWorkflowCancelledError(DBOSBaseException):
    """The workflow has been cancelled (DBOS's signal; celery_durable stops a cancelled
    workflow with a signal of its own, so this is not raised today)."""

    _constructed_from = ("message",)

    def __init__(self, msg: str) -> None:
        super().__init__(msg, DBOSErrorCode.WorkflowCancelled)


class DBOSWorkflowConflictIDError(DBOSBaseException):
    """This execution no longer owns its workflow (DBOS's signal; celery_durable's
    fencing stops such an execution with a signal of its own, so this is not raised
    today)."""

    _constructed_from = ("workflow_id",)

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Workflow {workflow_id} is no longer owned by this execution",
            DBOSErrorCode.ConflictingIDError,
        )
