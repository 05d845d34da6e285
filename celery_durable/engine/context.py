"""The ambient workflow and step of the running code, in ContextVars.

A small object per workflow execution, not a god object: the engine passes the store
execution and the serializer explicitly; user code reaches the context only through
the DBOS facade (``DBOS.workflow_id``, ``DBOS.get_context()``, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery_durable.core.outcomes import decode_roles
from celery_durable.core.records import StepRecord
from celery_durable.core.serialization import Serializer
from celery_durable.engine.launcher import Launcher
from celery_durable.engine.ports import EngineStore, Execution

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who code acts as, in DBOS's terms: the authenticated user, the roles granted to
    them, and the role assumed (the one a ``@DBOS.required_roles`` check chose)."""

    user: str | None
    roles: list[str] | None
    assumed_role: str | None


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
    execution: Execution
    store: EngineStore
    serializer: Serializer
    launcher: Launcher
    inline_retries: bool
    # Written in DBOS's portable format: its send/set_event/write_stream default to it.
    portable: bool = False
    _function_id: int = field(default=0)
    _identity: Identity | None = field(default=None)
    # Set when this execution's code has returned (a task it left behind, still holding
    # this context, may not run its operations: DBOS.reserve_step's reservations).
    ended: bool = field(default=False)
    # The asyncio task that runs an ``async def`` workflow's body (None: a synchronous
    # workflow, or not known). Its code may create tasks of its own (asyncio.gather).
    root_task: Any = field(default=None)
    # The children this execution started (it waits for them knowing they wake it).
    started_children: set[str] = field(default_factory=set)

    def in_side_task(self) -> bool:
        """Whether the running code is an asyncio task the workflow's code created (not
        its body's own task). Such a task cannot unwind the execution with a reschedule
        (the workflow's code would receive it, e.g. from ``asyncio.gather(...,
        return_exceptions=True)``): its waits happen in process, as in a direct call."""
        if self.root_task is None:
            return False
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: not a task at all
            return False
        return task is not None and task is not self.root_task

    # Set when this process cancelled the workflow (engine.live_executions): the next
    # step stops it instead of running.
    cancel_requested: bool = field(default=False)

    def identity(self) -> Identity:
        """The identity recorded on the workflow (``DBOSContextSetAuth``, inherited by
        children), read from its row the first time it is asked for.

        The claim returns only the user: reading the roles lazily keeps the claim, the
        hot path, unchanged, and costs one SELECT only to workflows whose code asks
        (``DBOS.authenticated_roles``, ``DBOS.assumed_role``, ``@DBOS.required_roles``).
        """
        if self._identity is None:
            roles, assumed = self.store.workflows.get_identity(self.workflow_id)
            self._identity = Identity(
                user=self.authenticated_user, roles=decode_roles(roles), assumed_role=assumed
            )
        return self._identity

    def act_as(self, user: str | None, roles: list[str] | None) -> None:
        """``DBOS.set_authentication`` in this workflow's code: the whole workflow acts as
        ``user`` from now on (every task its code created, and the children it starts),
        as DBOS changes its workflow's context; the assumed role is kept."""
        assumed = self.identity().assumed_role
        self.authenticated_user = user
        self._identity = Identity(user=user, roles=roles, assumed_role=assumed)

    @property
    def identity_loaded(self) -> bool:
        return self._identity is not None

    def next_function_id(self) -> int:
        """Takes the next operation's id, as DBOS does: the first is 1.

        Every durable operation (step, transaction, child workflow, result wait, sleep)
        takes one, in call order; replay depends on this order being deterministic. An
        operation run in a thread (see :func:`in_thread_in_call_order`) takes the ids
        reserved for it when it was called.
        """
        reserved = _reserved_ids.get()
        if reserved:
            return reserved.pop(0)
        self._function_id += 1
        return self._function_id

    def peek_function_id(self) -> int:
        """The id the next operation will take (without taking it)."""
        return self._function_id + 1


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
# SetWorkflowID's workflow_id_reuse_policy for that id ("reject": an id in use raises).
next_workflow_id_reuse: ContextVar[str | None] = ContextVar(
    "celery_durable_next_id_reuse", default=None
)
# The timeout in seconds of workflows started in this block (``SetWorkflowTimeout``).
workflow_timeout: ContextVar[float | None] = ContextVar(
    "celery_durable_workflow_timeout", default=None
)
# Inside a ``SetWorkflowTimeout`` block (even ``SetWorkflowTimeout(None)``): a child
# started there does not inherit its parent's deadline, as in DBOS.
ignore_propagated_deadline: ContextVar[bool] = ContextVar(
    "celery_durable_ignore_propagated_deadline", default=False
)
# Deduplication id, priority and delay of workflows enqueued in this block
# (``SetEnqueueOptions``).
enqueue_options: ContextVar[Any] = ContextVar("celery_durable_enqueue_options", default=None)
# The attributes of workflows started in this block (``SetWorkflowAttributes``).
workflow_attributes: ContextVar[dict[str, Any] | None] = ContextVar(
    "celery_durable_workflow_attributes", default=None
)
# The user and roles of a ``DBOSContextSetAuth`` block (None outside one).
authentication: ContextVar[Identity | None] = ContextVar(
    "celery_durable_authentication", default=None
)
# The role a ``@DBOS.required_roles`` check chose for the code running under it.
assumed_role: ContextVar[str | None] = ContextVar("celery_durable_assumed_role", default=None)


def in_workflow_code() -> WorkflowContext | None:
    """The running workflow, if the caller is its code (not a step inside it)."""
    if current_step.get() is not None:
        return None
    return current_workflow.get()


def current_user() -> str | None:
    """``DBOS.authenticated_user``: the enclosing ``DBOSContextSetAuth`` block's user,
    else the running workflow's."""
    scope = authentication.get()
    if scope is not None:
        return scope.user
    workflow = current_workflow.get()
    return workflow.authenticated_user if workflow is not None else None


def current_roles() -> list[str] | None:
    """``DBOS.authenticated_roles``: the block's roles, else the running workflow's."""
    scope = authentication.get()
    if scope is not None:
        return None if scope.roles is None else list(scope.roles)
    workflow = current_workflow.get()
    if workflow is None:
        return None
    roles = workflow.identity().roles
    return None if roles is None else list(roles)


def current_assumed_role() -> str | None:
    """``DBOS.assumed_role``: the role a ``required_roles`` check chose for the running
    code, else the one recorded on the running workflow (inherited from its starter)."""
    role = assumed_role.get()
    if role is not None:
        return role
    workflow = current_workflow.get()
    return workflow.identity().assumed_role if workflow is not None else None


def starting_identity(parent_workflow_id: str | None) -> Identity | None:
    """The identity a workflow started now records, as DBOS: the enclosing
    ``DBOSContextSetAuth`` block's user and roles, else those of the running workflow,
    with the running code's assumed role.

    Returns None for a child that inherits its parent's recorded identity unchanged:
    the insert copies it from the parent's row, so starting a child reads nothing.
    """
    scope = authentication.get()
    role = assumed_role.get()
    workflow = current_workflow.get()
    if workflow is None:
        if scope is None and role is None:
            return Identity(user=None, roles=None, assumed_role=None)
        return Identity(
            user=None if scope is None else scope.user,
            roles=None if scope is None else scope.roles,
            assumed_role=role,
        )
    if (
        scope is None
        and role is None
        and not workflow.identity_loaded
        and parent_workflow_id == workflow.workflow_id
    ):
        return None
    recorded = workflow.identity()
    return Identity(
        user=recorded.user if scope is None else scope.user,
        roles=recorded.roles if scope is None else scope.roles,
        assumed_role=role if role is not None else recorded.assumed_role,
    )


# The function ids an operation of workflow code took when it was called, before it
# went to a thread (see in_thread_in_call_order).
_reserved_ids: ContextVar[list[int] | None] = ContextVar(
    "celery_durable_reserved_ids", default=None
)


async def in_thread_in_call_order(ids: int, function: Callable[[], T]) -> T:
    """Runs ``function`` (an operation of workflow code taking ``ids`` function ids) in
    a thread, its ids taken now, in the calling task, as DBOS numbers its async
    operations: workflow code that creates tasks (``asyncio.gather``) numbers them in
    the order it called them, not the order their threads reach the database."""
    workflow = in_workflow_code()
    if workflow is None:
        return await asyncio.to_thread(function)
    reserved = [workflow.next_function_id() for _ in range(ids)]

    def run() -> T:
        _reserved_ids.set(reserved)  # in the thread's copy of the context only
        return function()

    return await asyncio.to_thread(run)
