"""The PostgreSQL store: schema, statements, and the classes that own connections."""

from celery_durable.store.execution import WorkflowExecution
from celery_durable.store.rows import (
    Claim,
    Dispatch,
    InsertedWorkflow,
    NewWorkflow,
    QueueLimits,
    Received,
    Redispatch,
    ReportedOutcome,
    Rescheduled,
    Sent,
    Timekeeping,
    Woken,
    WorkerVersion,
    WorkflowQuery,
)
from celery_durable.store.system import SystemStore
from celery_durable.store.urls import redact

__all__ = [
    "Claim",
    "Dispatch",
    "InsertedWorkflow",
    "NewWorkflow",
    "QueueLimits",
    "Received",
    "Redispatch",
    "ReportedOutcome",
    "Rescheduled",
    "Sent",
    "SystemStore",
    "Timekeeping",
    "Woken",
    "WorkerVersion",
    "WorkflowExecution",
    "WorkflowQuery",
    "redact",
]
