"""The ``DBOS`` facade: decorators, starting workflows, and operating them.

This is the one module with module-level state: decorators run at import time, before
(or after) ``DBOS(celery=..., config=...)`` is constructed, so they register into
process-wide registries, and the single ``DBOS`` instance wires them into its Celery
app. The machinery lives in :class:`~celery_durable.runtime.Runtime`, which receives
its collaborators explicitly.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar, Unpack, cast

from celery import Celery
from celery.signals import worker_ready

from celery_durable import celery_tasks, children, inspection
from celery_durable.context import (
    StepContext,
    StepStatus,
    current_step,
    current_workflow,
    next_workflow_id,
)
from celery_durable.error import (
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
)
from celery_durable.handle import WorkflowHandle, WorkflowHandleAsync
from celery_durable.inspection import WorkflowFilters
from celery_durable.records import WorkflowStatus
from celery_durable.recovery import RECOVERY_TASK_NAME
from celery_durable.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, Registry, WorkflowSpec
from celery_durable.retry import RetryPolicy
from celery_durable.runtime import DBOSConfig, Runtime
from celery_durable.steps import StepSpec, run_step, run_step_async
from celery_durable.store import QueueLimits, Redispatch, redact
from celery_durable.store.application import ISOLATION_LEVELS
from celery_durable.transactions import (
    DBOSSqlSession,
    TransactionSpec,
    current_session,
    run_transaction,
    run_transaction_async,
)

if TYPE_CHECKING:
    from celery_durable.queues import Queue

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
P = ParamSpec("P")
R = TypeVar("R")

_WORKFLOW_ATTRIBUTE = "__celery_durable_workflow__"


class _ContextFilter(logging.Filter):
    """Adds ``workflow_id`` and ``step_name`` to every record of ``DBOS.logger``."""

    def filter(self, record: logging.LogRecord) -> bool:
        workflow = current_workflow.get()
        step = current_step.get()
        record.workflow_id = workflow.workflow_id if workflow else None
        record.step_name = step.name if step else None
        return True


def _make_logger() -> logging.Logger:
    logger = logging.getLogger("dbos")
    logger.addFilter(_ContextFilter())
    return logger


class _DBOSMeta(type):
    """Class-level properties: ``DBOS.workflow_id`` and friends, read from context."""

    @property
    def workflow_id(cls) -> str | None:
        """The running workflow's id; None outside a workflow."""
        workflow = current_workflow.get()
        return workflow.workflow_id if workflow else None

    @property
    def step_id(cls) -> int | None:
        """The running step's id; None outside a step."""
        step = current_step.get()
        return step.step_id if step else None

    @property
    def sql_session(cls) -> DBOSSqlSession:
        """The running ``@DBOS.transaction``'s SQLAlchemy ``Session``.

        Raises:
            DBOSException: outside a transaction.
        """
        session = current_session.get()
        if session is None:
            raise DBOSException("DBOS.sql_session is only available inside a @DBOS.transaction")
        return session

    @property
    def step_status(cls) -> StepStatus | None:
        """The running step's id, 0-based attempt and attempt budget; None outside."""
        step = current_step.get()
        if step is None:
            return None
        attempt = None if step.attempt is None else step.attempt - 1
        return StepStatus(
            step_id=step.step_id, current_attempt=attempt, max_attempts=step.max_attempts
        )


class DBOS(metaclass=_DBOSMeta):
    """Durable workflows on a Celery app.

    Args:
        celery: The Celery app whose workers run the workflows.
        config: See :class:`~celery_durable.runtime.DBOSConfig`.
    """

    logger: ClassVar[logging.Logger] = _make_logger()
    _registry: ClassVar[Registry] = Registry()
    _queues: ClassVar[dict[str, QueueLimits]] = {}
    _instance: ClassVar[DBOS | None] = None

    def __init__(self, *, celery: Celery, config: DBOSConfig) -> None:
        self.runtime = Runtime(
            celery=celery, config=config, registry=DBOS._registry, queues=DBOS._queues
        )
        if DBOS._instance is not None:
            DBOS._instance.runtime.dispose()
        DBOS._instance = self
        DBOS._registry.subscribe(self._register_task)
        self._register_recovery()
        DBOS.logger.debug(
            "celery_durable configured: system database %s", redact(self.runtime.store.url)
        )

    # -- wiring into Celery -----------------------------------------------------------

    def _register_task(self, spec: WorkflowSpec) -> None:
        if DBOS._instance is self:
            # The task finds the configuration of the moment it runs, not of the
            # moment it was registered (Celery keeps the first task of a name).
            celery_tasks.register_workflow_task(
                self.runtime.celery,
                spec,
                lambda: DBOS._runtime().engine(),
                lambda: DBOS._runtime().max_countdown_seconds(),
            )

    def _register_recovery(self) -> None:
        """The beat-scheduled sweep task, and what a worker does when it starts."""
        celery = self.runtime.celery
        interval = self.runtime.config["recovery_interval_seconds"]
        sweep_task = celery.task(name=RECOVERY_TASK_NAME, ignore_result=True)(_recovery_task)
        celery.add_periodic_task(
            interval,
            sweep_task.s(),
            name=RECOVERY_TASK_NAME,
            # Sweeps that no worker took in time are useless: the next one comes.
            expires=interval,
        )
        worker_ready.connect(self._on_worker_ready, weak=False)

    def _on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        app = getattr(sender, "app", None)
        if DBOS._instance is not self or app is not self.runtime.celery:
            return
        hostname = str(getattr(sender, "hostname", "") or "worker")
        # In the background: a worker must not wait on the database to start consuming.
        threading.Thread(
            target=self._worker_started, args=(hostname,), name="celery-durable-start"
        ).start()

    def _worker_started(self, hostname: str) -> None:
        try:
            self.runtime.register_served(hostname)
            if self.runtime.config["recover_on_worker_start"]:
                recovered = self.runtime.recover()
                DBOS.logger.info("Start-up recovery published %d workflow(s) again", len(recovered))
        except DBOSException as error:
            DBOS.logger.warning("Worker start-up registration/recovery failed: %s", error)

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
    def launch(cls) -> None:
        """Creates or migrates the tables and records the queues. Idempotent."""
        cls._runtime().engine()

    @classmethod
    def destroy(cls) -> None:
        """Closes this process's connections and forgets the configuration."""
        if cls._instance is not None:
            cls._instance.runtime.dispose()
            cls._instance = None

    @classmethod
    def recover(cls) -> list[Redispatch]:
        """Runs one recovery sweep now (beat runs it every ``recovery_interval_seconds``).

        Returns:
            The workflows published again, each with its new generation and the reason.
        """
        return cls._runtime().recover()

    @classmethod
    def _register_queue(cls, queue: Queue) -> None:
        cls._queues[queue.name] = queue.limits

    # -- decorators -------------------------------------------------------------------

    @staticmethod
    def workflow(
        *, name: str | None = None, max_recovery_attempts: int | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a durable workflow; its name is also its Celery task name.

        Called from another workflow's code, a workflow runs as its child (id
        ``{parent_id}-{step_id}``) and the parent waits for it without holding a
        worker slot.

        Args:
            name: Defaults to the function's ``__qualname__``.
            max_recovery_attempts: How often a workflow's executions may die before it
                becomes MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 100).
        """
        if max_recovery_attempts is not None and (
            not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0
        ):
            raise ValueError(
                f"max_recovery_attempts must be an integer >= 0, not {max_recovery_attempts!r}"
            )

        def decorator(function: Callable[P, R]) -> Callable[P, R]:
            spec = WorkflowSpec(
                name=name or function.__qualname__,
                function=function,
                is_async=inspect.iscoroutinefunction(function),
                max_recovery_attempts=(
                    DEFAULT_MAX_RECOVERY_ATTEMPTS
                    if max_recovery_attempts is None
                    else max_recovery_attempts
                ),
            )
            DBOS._registry.register(spec)
            wrapper: Callable[..., Any]
            if spec.is_async:

                @functools.wraps(function)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    runtime = DBOS._runtime()
                    parent = children.in_workflow_code()
                    if parent is not None:
                        return children.call_child(runtime, parent, spec, args, kwargs)
                    return await runtime.call_async(spec, args, kwargs)

                wrapper = async_wrapper
            else:

                @functools.wraps(function)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    runtime = DBOS._runtime()
                    parent = children.in_workflow_code()
                    if parent is not None:
                        return children.call_child(runtime, parent, spec, args, kwargs)
                    return runtime.call(spec, args, kwargs)

                wrapper = sync_wrapper
            setattr(wrapper, _WORKFLOW_ATTRIBUTE, spec)
            return cast(Callable[P, R], wrapper)

        return decorator

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

        def decorator(function: Callable[P, R]) -> Callable[P, R]:
            spec = StepSpec(name=name or function.__qualname__, policy=policy)
            wrapper: Callable[..., Any]
            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return await run_step_async(spec, function, args, kwargs)

                wrapper = async_wrapper
            else:

                @functools.wraps(function)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return run_step(spec, function, args, kwargs)

                wrapper = sync_wrapper
            return cast(Callable[P, R], wrapper)

        return decorator

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
        if isolation_level not in ISOLATION_LEVELS:
            raise ValueError(
                f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, "
                f"not {isolation_level!r}"
            )

        def decorator(function: Callable[P, R]) -> Callable[P, R]:
            spec = TransactionSpec(
                name=name or function.__qualname__,
                isolation_level=isolation_level,
                store=lambda: DBOS._runtime().ready_application_store(),
            )
            wrapper: Callable[..., Any]
            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return await run_transaction_async(spec, function, args, kwargs)

                wrapper = async_wrapper
            else:

                @functools.wraps(function)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return run_transaction(spec, function, args, kwargs)

                wrapper = sync_wrapper
            return cast(Callable[P, R], wrapper)

        return decorator

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
        parent = children.in_workflow_code()
        if parent is not None:
            return children.start_child(runtime, parent, spec, args, kwargs)
        return runtime.start(spec, tuple(args), dict(kwargs), queue=queue)

    @classmethod
    async def _start_async(
        cls, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandleAsync[Any]:
        runtime = cls._runtime()
        spec = _spec_of(workflow)
        parent = children.in_workflow_code()
        if parent is not None:
            handle = children.start_child(runtime, parent, spec, args, kwargs)
            return WorkflowHandleAsync(handle.workflow_id, runtime.store, runtime.serializer)
        return await runtime.start_async(spec, tuple(args), dict(kwargs), queue=queue)

    @staticmethod
    def sleep(seconds: float) -> None:
        """Sleeps durably: in a workflow, the worker is free until the wake-up time.

        The wake-up time is recorded once; a replay after it does not sleep again. A
        wait longer than the broker can hold is parked in PostgreSQL. Outside a
        workflow (or in a step) it is ``time.sleep``.
        """
        remaining = children.sleep_remaining(seconds)
        if remaining > 0:
            time.sleep(remaining)

    @staticmethod
    async def sleep_async(seconds: float) -> None:
        """``DBOS.sleep`` for ``async def`` workflows."""
        remaining = children.sleep_remaining(seconds)
        if remaining > 0:
            await asyncio.sleep(remaining)

    # -- operating workflows ----------------------------------------------------------

    @classmethod
    def cancel_workflow(cls, workflow_id: str) -> None:
        """Cancels a workflow: it stops at its next step boundary, and a pending retry,
        sleep or queue wait is dropped. ``get_result`` then raises
        ``DBOSAwaitedWorkflowCancelledError``."""
        cls._runtime().cancel(workflow_id)

    @classmethod
    def resume_workflow(cls, workflow_id: str) -> WorkflowHandle[Any]:
        """Runs a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again from
        its checkpoints (completed steps are not re-run), with a fresh recovery budget."""
        return cls._runtime().resume(workflow_id)

    @classmethod
    def fork_workflow(cls, workflow_id: str, start_step: int) -> WorkflowHandle[Any]:
        """Starts a new workflow with the same inputs that replays the steps before
        ``start_step`` (a ``function_id``) and runs the rest again."""
        return cls._runtime().fork(workflow_id, start_step)

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
        if existing_workflow and runtime.store.get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return runtime.handle(workflow_id)

    @classmethod
    def list_workflows(cls, **filters: Unpack[WorkflowFilters]) -> list[WorkflowStatus]:
        """Workflows matching every given filter, oldest first (as in DBOS).

        Filters: ``workflow_ids``, ``status`` (one or a list), ``start_time`` and
        ``end_time`` (creation time, ISO-8601 strings or datetimes), ``name``,
        ``queue_name``, ``limit``, ``offset``, ``sort_desc``.
        """
        runtime = cls._runtime()
        return inspection.list_workflows(runtime.engine().store, runtime.serializer, **filters)

    @classmethod
    def list_workflow_steps(cls, workflow_id: str) -> list[dict[str, Any]]:
        """Every recorded step of a workflow, ordered by ``function_id``.

        See :func:`celery_durable.inspection.list_workflow_steps` for the keys.
        """
        runtime = cls._runtime()
        return inspection.list_workflow_steps(
            runtime.engine().store, runtime.serializer, workflow_id
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


def _recovery_task() -> int:
    """The body of the beat-scheduled ``celery_durable.recover`` task."""
    return len(DBOS.recover())


class SetWorkflowID:
    """Names the next workflow started in this block.

    ``with SetWorkflowID("order-1"): DBOS.start_workflow(...)`` is idempotent: the same
    id never runs the workflow twice; a second start returns the first one's handle.
    """

    def __init__(self, workflow_id: str) -> None:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise DBOSException(f"A workflow id must be a non-empty string, not {workflow_id!r}")
        self.workflow_id = workflow_id
        self._token: Any = None

    def __enter__(self) -> SetWorkflowID:
        self._token = next_workflow_id.set(self.workflow_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        next_workflow_id.reset(self._token)


def _spec_of(workflow: Callable[..., Any]) -> WorkflowSpec:
    spec = getattr(workflow, _WORKFLOW_ATTRIBUTE, None)
    if not isinstance(spec, WorkflowSpec):
        label = getattr(workflow, "__qualname__", repr(workflow))
        raise DBOSException(
            f"{label} is not a workflow: decorate it with @DBOS.workflow() to start it"
        )
    return spec
