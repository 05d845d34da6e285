"""The ``DBOS`` facade: decorators, starting workflows, and operating them.

This is the one module with module-level state: decorators run at import time, before
(or after) ``DBOS(celery=..., config=...)`` is constructed, so they register into
process-wide registries, and the single ``DBOS`` instance wires them into its Celery
app. The machinery lives in :class:`~celery_durable.integration.runtime.Runtime`, which receives
its collaborators explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Literal, ParamSpec, TypeVar, Unpack, cast

from celery import Celery

from celery_durable.api import inspection
from celery_durable.api.ambient import AmbientProperties, make_logger
from celery_durable.api.decorators import (
    WORKFLOW_ATTRIBUTE,
    declare_required_roles,
    declare_step,
    declare_transaction,
    declare_workflow,
)
from celery_durable.api.handle import WorkflowHandle, WorkflowHandleAsync
from celery_durable.api.inspection import WorkflowFilters
from celery_durable.api.messages import WorkflowMessaging
from celery_durable.api.schedules import WorkflowSchedules
from celery_durable.api.versions import WorkflowVersioning
from celery_durable.core.records import WorkflowStatus
from celery_durable.core.retry import RetryPolicy
from celery_durable.engine import waits
from celery_durable.engine.context import (
    StepContext,
    current_step,
    current_workflow,
    in_workflow_code,
)
from celery_durable.engine.registry import Registry, WorkflowSpec
from celery_durable.error import (
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
)
from celery_durable.integration.config import DBOSConfig
from celery_durable.integration.lifecycle import WorkerHooks, register_recovery_task
from celery_durable.integration.runtime import Runtime
from celery_durable.integration.tasks import register_workflow_task
from celery_durable.observability.setup import configure_tracing
from celery_durable.store import QueueLimits, Redispatch, redact

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
P = ParamSpec("P")
R = TypeVar("R")


class DBOS(WorkflowMessaging, WorkflowSchedules, WorkflowVersioning, metaclass=AmbientProperties):
    """Durable workflows on a Celery app.

    Args:
        celery: The Celery app whose workers run the workflows.
        config: See [DBOSConfig][celery_durable.DBOSConfig].
    """

    logger: ClassVar[logging.Logger] = make_logger()
    _registry: ClassVar[Registry] = Registry()
    _queues: ClassVar[dict[str, QueueLimits]] = {}
    _scheduled_workflows: ClassVar[dict[str, str]] = {}
    _instance: ClassVar[DBOS | None] = None

    def __init__(self, *, celery: Celery, config: DBOSConfig) -> None:
        self.runtime = Runtime(
            celery=celery, config=config, registry=DBOS._registry, queues=DBOS._queues
        )
        if DBOS._instance is not None:
            DBOS._instance._release()
        DBOS._instance = self
        DBOS._registry.subscribe(self._register_task)
        for name, cron in DBOS._scheduled_workflows.items():
            self.runtime.operator.schedules.declare(name, cron)
        register_recovery_task(
            celery, DBOS.recover, self.runtime.process.config["recovery_interval_seconds"]
        )
        self._hooks = WorkerHooks(
            lambda: None if DBOS._instance is None else DBOS._instance.runtime.operator,
            owner=self.runtime.operator,
            interval_seconds=self.runtime.process.config["recovery_interval_seconds"],
            recover_on_start=self.runtime.process.config["recover_on_worker_start"],
        )
        configure_tracing(self.runtime.process.config.get("tracing"))
        DBOS.logger.debug(
            "celery_durable configured: system database %s", redact(self.runtime.process.store.url)
        )

    def _register_task(self, spec: WorkflowSpec) -> None:
        if DBOS._instance is self:
            # The task finds the configuration of the moment it runs (Celery keeps the
            # first task of a name).
            register_workflow_task(
                self.runtime.process.celery, spec, lambda: DBOS._runtime().process
            )

    def _release(self) -> None:
        self._hooks.disconnect()
        self.runtime.process.dispose()

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    def _require(cls) -> DBOS:
        if cls._instance is None:
            raise DBOSInitializationError(
                "DBOS is not configured: call DBOS(celery=app, config={...}) first"
            )
        return cls._instance

    @classmethod
    def _runtime(cls) -> Runtime:
        return cls._require().runtime

    @classmethod
    def _current_runtime(cls) -> Runtime | None:
        return None if cls._instance is None else cls._instance.runtime

    @classmethod
    def launch(cls) -> None:
        """Creates or migrates the tables, records the queues and writes the
        ``@DBOS.scheduled`` schedules. Idempotent.

        Migrations run only here, in ``celery-durable migrate`` and when a worker
        starts; reading workflows never changes the schema.
        """
        runtime = cls._runtime()
        runtime.process.migrate()
        runtime.process.engine()
        runtime.operator.schedules.write_declared()

    @classmethod
    def destroy(cls) -> None:
        """Closes this process's connections and forgets the configuration."""
        if cls._instance is not None:
            cls._instance._release()
            cls._instance = None

    @classmethod
    def recover(cls) -> list[Redispatch]:
        """Runs one recovery sweep now (workers run it every ``recovery_interval_seconds``;
        while another sweep runs, this one publishes nothing).

        Returns:
            The workflows published again, each with its new generation and the reason.
        """
        return cls._runtime().operator.recover()

    @classmethod
    def _register_queue(cls, limits: QueueLimits) -> None:
        """A ``Queue``'s limits, written to PostgreSQL when a process's engine starts."""
        cls._queues[limits.name] = limits

    # -- decorators -------------------------------------------------------------------

    @staticmethod
    def workflow(
        *, name: str | None = None, max_recovery_attempts: int | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a durable workflow; its name is also its Celery task name.

        Called from another workflow's code, a workflow runs as its child (id
        ``{parent_id}-{function_id}``, the call's 1-based operation number) and the
        parent waits for it without holding a worker slot.

        Args:
            name: Defaults to the function's ``__qualname__``.
            max_recovery_attempts: How often a workflow's executions may die before it
                becomes MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 100).
        """
        return declare_workflow(DBOS._registry, DBOS._runtime, name, max_recovery_attempts)

    @staticmethod
    def step(
        *,
        name: str | None = None,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: Callable[[Exception], bool] | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a step: checkpointed once it succeeds, retried with backoff.

        Attempt ``k + 1`` starts ``interval_seconds * backoff_rate ** (k - 1)`` seconds
        after attempt ``k`` fails. After ``max_attempts`` failures the workflow sees
        ``DBOSMaxStepRetriesExceeded``; with ``retries_allowed=False`` or when
        ``should_retry(error)`` is False, it sees the step's own error at once.
        """
        policy = RetryPolicy(
            retries_allowed=retries_allowed,
            max_attempts=max_attempts,
            interval_seconds=interval_seconds,
            backoff_rate=backoff_rate,
            should_retry=should_retry,
        )
        return declare_step(name, policy)

    @staticmethod
    def required_roles(roles: list[str]) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Lets only callers with one of ``roles`` (``DBOSContextSetAuth``) call a
        workflow or step; others get ``DBOSNotAuthorizedError``. The role found is
        ``DBOS.assumed_role`` while it runs. Put it above ``@DBOS.workflow()``.
        """
        return declare_required_roles(DBOS._registry, roles)

    @staticmethod
    def transaction(
        *, isolation_level: IsolationLevel = "SERIALIZABLE", name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a database transaction, executed exactly once per workflow call.

        Inside it, ``DBOS.sql_session`` is a SQLAlchemy ``Session`` on the application
        database. Its outcome is recorded in the same database transaction as its
        writes. Serialization failures and deadlocks are retried in-process; other
        errors are recorded and raised.

        Args:
            isolation_level: ``SERIALIZABLE`` (default, as in DBOS), ``REPEATABLE READ``
                or ``READ COMMITTED``.
            name: Defaults to the function's ``__qualname__``.
        """
        return declare_transaction(
            name, isolation_level, lambda: DBOS._runtime().process.application_store
        )

    # -- starting workflows -----------------------------------------------------------

    @classmethod
    def start_workflow(
        cls,
        workflow: Callable[P, R] | Callable[P, Coroutine[Any, Any, R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandle[R]:
        """Enqueues a workflow for a Celery worker and returns its handle at once.

        Inputs are serialized and the workflow's row is committed before the Celery
        message (which carries only the workflow id) is published. Inside a
        ``SetWorkflowID`` block, a second start with the same id returns a handle to
        the first workflow and runs nothing. Inside a workflow, it starts a child.
        """
        return cast(WorkflowHandle[R], cls._start(workflow, args, kwargs, queue=None))

    @classmethod
    async def start_workflow_async(
        cls,
        workflow: Callable[P, Awaitable[R]] | Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandleAsync[R]:
        """``start_workflow`` for async callers (the database work runs in a thread)."""
        return cast(
            WorkflowHandleAsync[R], await cls._start_async(workflow, args, kwargs, queue=None)
        )

    @classmethod
    def _start(
        cls, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandle[Any]:
        runtime = cls._runtime()
        spec = _spec_of(workflow)
        parent = in_workflow_code()
        if parent is not None:
            workflow_id = waits.start_child(parent, spec, args, kwargs, queue_name=queue)
        else:
            workflow_id = runtime.starter.start(spec, tuple(args), dict(kwargs), queue=queue)
        return WorkflowHandle(workflow_id, runtime.process.store, runtime.process.serializer)

    @classmethod
    async def _start_async(
        cls, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandleAsync[Any]:
        runtime = cls._runtime()
        spec = _spec_of(workflow)
        parent = in_workflow_code()
        if parent is not None:
            workflow_id = waits.start_child(parent, spec, args, kwargs, queue_name=queue)
        else:
            workflow_id = await runtime.starter.start_async(
                spec, tuple(args), dict(kwargs), queue=queue
            )
        return WorkflowHandleAsync(workflow_id, runtime.process.store, runtime.process.serializer)

    @staticmethod
    def sleep(seconds: float) -> None:
        """Sleeps durably: in a workflow, the worker is free until the wake-up time.

        The wake-up time is recorded once; a replay after it does not sleep again. A
        wait longer than the broker can hold is parked in PostgreSQL. Outside a
        workflow (or in a step) it is ``time.sleep``.
        """
        remaining = waits.sleep_remaining(seconds)
        if remaining > 0:
            time.sleep(remaining)

    @staticmethod
    async def sleep_async(seconds: float) -> None:
        """``DBOS.sleep`` for ``async def`` workflows."""
        remaining = waits.sleep_remaining(seconds)
        if remaining > 0:
            await asyncio.sleep(remaining)

    # -- operating workflows ----------------------------------------------------------

    @classmethod
    def cancel_workflow(cls, workflow_id: str) -> None:
        """Cancels a workflow: it stops at its next step boundary, and a pending retry,
        sleep or queue wait is dropped. ``get_result`` then raises
        ``DBOSAwaitedWorkflowCancelledError``."""
        cls._runtime().operator.cancel(workflow_id)

    @classmethod
    def resume_workflow(cls, workflow_id: str) -> WorkflowHandle[Any]:
        """Runs a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again from
        its checkpoints (completed steps are not re-run), with a fresh recovery budget."""
        runtime = cls._runtime()
        runtime.operator.resume(workflow_id)
        return WorkflowHandle(workflow_id, runtime.process.store, runtime.process.serializer)

    # -- inspection -------------------------------------------------------------------

    @classmethod
    def retrieve_workflow(
        cls, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandle[Any]:
        """A handle to any workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        runtime = cls._runtime()
        if existing_workflow and runtime.process.store.workflows.get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return WorkflowHandle(workflow_id, runtime.process.store, runtime.process.serializer)

    @classmethod
    def list_workflows(cls, **filters: Unpack[WorkflowFilters]) -> list[WorkflowStatus]:
        """Workflows matching every given filter, oldest first (as in DBOS).

        Filters: ``workflow_ids``, ``status`` (one or a list), ``start_time`` and
        ``end_time`` (creation time, ISO-8601 strings or datetimes), ``name``,
        ``queue_name``, ``app_version`` (one or a list), ``limit``, ``offset``,
        ``sort_desc``.
        """
        runtime = cls._runtime()
        return inspection.list_workflows(
            runtime.process.store, runtime.process.serializer, **filters
        )

    @classmethod
    def list_workflow_steps(cls, workflow_id: str) -> list[dict[str, Any]]:
        """Every recorded step of a workflow, ordered by ``function_id``.

        Each dict has ``function_id`` (from 1), ``function_name``, ``output``, ``error``
        (the exception), ``child_workflow_id``, ``attempts``, ``started_at_epoch_ms``,
        ``completed_at_epoch_ms`` (None while the step waits for its next attempt),
        ``retry_due_at_epoch_ms`` and ``attempt_history``: one dict per attempt with
        ``attempt``, ``started_at_epoch_ms``, ``completed_at_epoch_ms`` and ``error``.
        """
        runtime = cls._runtime()
        return inspection.list_workflow_steps(
            runtime.process.store, runtime.process.serializer, workflow_id
        )

    @staticmethod
    def get_context() -> StepContext | None:
        """The running step's (or workflow's) context; None outside both."""
        step = current_step.get()
        if step is not None:
            return step
        workflow = current_workflow.get()
        if workflow is None:
            return None
        return StepContext(
            name=workflow.workflow_name,
            workflow_id=workflow.workflow_id,
            step_id=None,
            attempt=None,
            max_attempts=None,
            authenticated_user=workflow.authenticated_user,
        )


def _spec_of(workflow: Callable[..., Any]) -> WorkflowSpec:
    spec = getattr(workflow, WORKFLOW_ATTRIBUTE, None)
    if not isinstance(spec, WorkflowSpec):
        label = getattr(workflow, "__qualname__", repr(workflow))
        raise DBOSException(
            f"{label} is not a workflow: decorate it with @DBOS.workflow() to start it"
        )
    return spec
