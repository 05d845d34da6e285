"""Errors of celery_durable.

Everything users may catch derives from
[DBOSException][celery_durable.error.DBOSException], with DBOS Transact's names and
messages. Control-flow signals that must pass through user code (an
``except Exception:`` in a workflow must not swallow them) derive from
``BaseException`` and live in ``celery_durable.core.signals``.

Every exception here survives pickling, and is constructible from the arguments its
``__reduce__`` returns so that the JSON serializer can rebuild it on replay. Import
them from here: the submodules (``base``, ``system``, ``workflows``, ``steps``) only
group their definitions, and every class says it is this package's (its
``__module__``), so a recorded error names ``celery_durable.error:<class>`` as it did
when this package was one module, and any release reads it.
"""

from __future__ import annotations

from celery_durable.error.base import DBOSBaseException, DBOSErrorCode, DBOSException
from celery_durable.error.steps import (
    DBOSCeleryTaskError,
    DBOSMaxStepRetriesExceeded,
    DBOSPatchNondeterminismError,
    DBOSStepNondeterminismError,
    DBOSStepTimeoutError,
    DBOSStreamNondeterminismError,
    DBOSStreamTimeoutError,
    DBOSUnexpectedStepError,
)
from celery_durable.error.system import (
    DBOSInitializationError,
    DBOSNotAuthorizedError,
    DBOSQueryTimeoutError,
    DBOSSchemaMissingError,
    DBOSSerializationError,
    DBOSSystemDatabaseError,
    RecordedError,
)
from celery_durable.error.workflows import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSConflictingWorkflowError,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
    DBOSRecoveryError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DBOSWorkflowFunctionNotFoundError,
    DBOSWorkflowIDInUseError,
    DBOSWorkflowMaxRecoveryAttemptsExceededError,
    MaxRecoveryAttemptsExceededError,
    is_workflow_id_in_use_error,
)

__all__ = [
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded",
    "DBOSBaseException",
    "DBOSCeleryTaskError",
    "DBOSConflictingWorkflowError",
    "DBOSErrorCode",
    "DBOSException",
    "DBOSInitializationError",
    "DBOSMaxStepRetriesExceeded",
    "DBOSNonExistentWorkflowError",
    "DBOSNotAuthorizedError",
    "DBOSPatchNondeterminismError",
    "DBOSQueryTimeoutError",
    "DBOSQueueDeduplicatedError",
    "DBOSRecoveryError",
    "DBOSSchemaMissingError",
    "DBOSSerializationError",
    "DBOSStepNondeterminismError",
    "DBOSStepTimeoutError",
    "DBOSStreamNondeterminismError",
    "DBOSStreamTimeoutError",
    "DBOSSystemDatabaseError",
    "DBOSUnexpectedStepError",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    "DBOSWorkflowFunctionNotFoundError",
    "DBOSWorkflowIDInUseError",
    "DBOSWorkflowMaxRecoveryAttemptsExceededError",
    "MaxRecoveryAttemptsExceededError",
    "RecordedError",
    "is_workflow_id_in_use_error",
]

# A JSON checkpoint records an error's class as ``__module__:__qualname__``, a pickle as
# its ``__module__`` and name: both name this package, wherever the class is defined.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
