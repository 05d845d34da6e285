"""The PostgreSQL store: schema, statements and the connection-owning store class."""

from celery_durable.store.engines import now_epoch_ms, redact
from celery_durable.store.system import (
    Claim,
    InsertedWorkflow,
    NewWorkflow,
    Redispatch,
    SystemStore,
    WorkflowExecution,
)

__all__ = [
    "Claim",
    "InsertedWorkflow",
    "NewWorkflow",
    "Redispatch",
    "SystemStore",
    "WorkflowExecution",
    "now_epoch_ms",
    "redact",
]
