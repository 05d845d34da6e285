"""celery_durable: DBOS-style durable workflows and steps on Celery.

The public surface is what this module exports; everything else is internal.
"""

from celery_durable.client import DBOSClient, EnqueueOptions
from celery_durable.context import StepContext, StepStatus
from celery_durable.dbos import DBOS, SetWorkflowID
from celery_durable.handle import WorkflowHandle, WorkflowHandleAsync
from celery_durable.queues import Queue, SetEnqueueOptions
from celery_durable.records import WorkflowStatus, WorkflowStatusString
from celery_durable.runtime import DBOSConfig

__all__ = [
    "DBOS",
    "DBOSClient",
    "DBOSConfig",
    "EnqueueOptions",
    "Queue",
    "SetEnqueueOptions",
    "SetWorkflowID",
    "StepContext",
    "StepStatus",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowStatus",
    "WorkflowStatusString",
]
