"""DBOS's error codes and the two roots every celery_durable error derives from."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar


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


class Rebuildable:
    """An error that pickling and the JSON serializer rebuild by calling its class with
    the arguments ``__reduce__`` returns: the attributes ``_constructed_from`` names,
    which hold the constructor's arguments in its order (each class names its own)."""

    _constructed_from: ClassVar[tuple[str, ...]] = ("message", "dbos_error_code")

    def __reduce__(self) -> Any:
        return (self.__class__, tuple(getattr(self, name) for name in self._constructed_from))


def describe(message: str, code: int | None) -> str:
    """As DBOS: "DBOS Error 5: ..." with a code, "DBOS Error: ..." without one."""
    return f"DBOS Error: {message}" if code is None else f"DBOS Error {code}: {message}"


class DBOSException(Rebuildable, Exception):
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
        return describe(self.message, self.dbos_error_code)


class DBOSBaseException(Rebuildable, BaseException):
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
        return describe(self.message, self.dbos_error_code)
