"""The PostgreSQL store: schema, statements and the connection-owning store class."""

from celery_durable.store.engines import now_epoch_ms, redact
from celery_durable.store.system import (
    Claim,
    Dispatch,
    InsertedWorkflow,
    NewWorkflow,
    QueueLimits,
    Redispatch,
    Rescheduled,
    SystemStore,
    WorkflowExecution,
)

__all__ = [
    "Claim",
    "Dispatch",
    "InsertedWorkflow",
    "NewWorkflow",
    "QueueLimits",
    "Redispatch",
    "Rescheduled",
    "SystemStore",
    "WorkflowExecution",
    "now_epoch_ms",
    "redact",
]
