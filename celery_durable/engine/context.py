"""The ambient workflow and step of the running code, in ContextVars.

A small object per workflow execution, not a god object: the engine passes the store
execution and the serializer explicitly; user code reaches the context only through
the DBOS facade (``DBOS.workflow_id``, ``DBOS.get_context()``, ...).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from celery_durable.core.records import StepRecord
from celery_durable.core.serialization import Serializer
from celery_durable.engine.launcher import Launcher
from celery_durable.store import SystemStore, WorkflowExecution


@dataclass(eq=False, kw_only=True)
class WorkflowContext:
    """One execution of one workflow.

    Attributes:
        inline_retries: True for a direct in-process call, whose step retries wait in
            the calling process; False under Celery, where they re-queue the task.
        launcher: Starts and runs child workflows (the layer above the engine).
    """

    workflow_id: str
    workflow_name: str
    authenticated_user: str | None
    checkpoints: dict[int, StepRecord]
    execution: WorkflowExecution
    store: SystemStore
    serializer: Serializer
    launcher: Launcher
    inline_retries: bool
    _function_id: int = field(default=0)

    def next_function_id(self) -> int:
        """Takes the next operation's id, as DBOS does: the first is 1.

        Every durable operation (step, transaction, child workflow, result wait, sleep)
        takes one, in call order; replay depends on this order being deterministic.
        """
        self._function_id += 1
        return self._function_id


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What ``DBOS.get_context()`` returns.

    Inside a step, ``name`` is the step's name and ``attempt`` is 1-based; in workflow
    code outside a step, ``name`` is the workflow's name and the step fields are None.
    """

    name: str | None
    workflow_id: str | None
    step_id: int | None
    attempt: int | None
    max_attempts: int | None
    authenticated_user: str | None


@dataclass(frozen=True, kw_only=True)
class StepStatus:
    """``DBOS.step_status``, as in DBOS: ``current_attempt`` is 0-based."""

    step_id: int | None
    current_attempt: int | None
    max_attempts: int | None


current_workflow: ContextVar[WorkflowContext | None] = ContextVar(
    "celery_durable_workflow", default=None
)
current_step: ContextVar[StepContext | None] = ContextVar("celery_durable_step", default=None)
# The id the next started workflow takes (``SetWorkflowID``).
next_workflow_id: ContextVar[str | None] = ContextVar("celery_durable_next_id", default=None)
# The timeout in seconds of workflows started in this block (``SetWorkflowTimeout``).
workflow_timeout: ContextVar[float | None] = ContextVar(
    "celery_durable_workflow_timeout", default=None
)
# Deduplication id, priority and delay of workflows enqueued in this block
# (``SetEnqueueOptions``).
enqueue_options: ContextVar[Any] = ContextVar("celery_durable_enqueue_options", default=None)


def in_workflow_code() -> WorkflowContext | None:
    """The running workflow, if the caller is its code (not a step inside it)."""
    if current_step.get() is not None:
        return None
    return current_workflow.get()
