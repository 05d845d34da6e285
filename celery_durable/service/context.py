"""The running code's context as the facades read and set it: the context variables
that ``SetWorkflowID``, ``SetEnqueueOptions``, ``SetWorkflowTimeout``,
``SetWorkflowAttributes`` and ``DBOSContextSetAuth`` set for the next workflows
started, and the readers behind ``DBOS.workflow_id`` and the other class properties.
They live in the engine (:mod:`celery_durable.engine.context`); the facades reach them
only here."""

from __future__ import annotations

from celery_durable.engine.context import (
    Identity,
    StepContext,
    StepStatus,
    authentication,
    current_assumed_role,
    current_roles,
    current_step,
    current_user,
    current_workflow,
    enqueue_options,
    ignore_propagated_deadline,
    next_workflow_id,
    next_workflow_id_reuse,
    workflow_attributes,
    workflow_timeout,
)
from celery_durable.engine.transactions import DBOSSqlSession, current_session

__all__ = [
    "DBOSSqlSession",
    "Identity",
    "StepContext",
    "StepStatus",
    "authentication",
    "current_assumed_role",
    "current_roles",
    "current_session",
    "current_step",
    "current_user",
    "current_workflow",
    "enqueue_options",
    "ignore_propagated_deadline",
    "next_workflow_id",
    "next_workflow_id_reuse",
    "workflow_attributes",
    "workflow_timeout",
]
