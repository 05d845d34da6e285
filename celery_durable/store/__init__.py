"""The PostgreSQL store: schema, statements and the connection-owning store class."""

from celery_durable.store.system import (
    Claim,
    NewWorkflow,
    SystemStore,
    WorkflowExecution,
    now_epoch_ms,
    redact,
)

__all__ = [
    "Claim",
    "NewWorkflow",
    "SystemStore",
    "WorkflowExecution",
    "now_epoch_ms",
    "redact",
]
