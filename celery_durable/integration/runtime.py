"""One configuration of celery_durable in one process: its app, stores and engine.

The ``DBOS`` facade holds one ``Runtime`` and delegates to it; everything here receives
its collaborators explicitly (the registries are passed in, not imported). It is the
engine's :class:`~celery_durable.engine.launcher.Launcher`: it creates and publishes
child workflows and runs direct calls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Literal

from celery import Celery

from celery_durable.core import forking
from celery_durable.core.serialization import make_serializer
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import waiting
from celery_durable.engine.context import next_workflow_id
from celery_durable.engine.executor import Engine, RunResult
from celery_durable.engine.registry import Registry, WorkflowSpec
from celery_durable.error import (
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
)
from celery_durable.integration import publishing
from celery_durable.integration.config import DEFAULT_CONFIG, DBOSConfig
from celery_durable.integration.direct import DirectCall
from celery_durable.integration.enqueue import EnqueueSettings, new_workflow_row
from celery_durable.integration.recovery import recover
from celery_durable.integration.schedules import ScheduleKeeper
from celery_durable.integration.versions import compute_app_version, version_live_ms
from celery_durable.store import (
    Dispatch,
    InsertedWorkflow,
    NewWorkflow,
    QueueLimits,
    Redispatch,
    SystemStore,
    redact,
)
from celery_durable.store.application import ApplicationStore
from celery_durable.store.embedded import start_postgres

logger = logging.getLogger("celery_durable.runtime")


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
        version = merged.get("application_version")
        if version is not None and (not isinstance(version, str) or not version):
            raise DBOSInitializationError(
                f'config["application_version"] must be a non-empty string, not {version!r}'
            )
        modules = merged.get("importable_error_modules", [])
        if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
            raise DBOSInitializationError(
                'config["importable_error_modules"] must be a list of module names, '
                f"not {modules!r}"
            )
        url = merged.get("system_database_url") or start_postgres(name)
        self.celery = celery
        self.config = merged
        self.registry = registry
        self.queues = queues
        self.serializer = make_serializer(merged["serializer"], modules)
        self.store = SystemStore(
            url,
            pool_size=merged["sys_db_pool_size"],
            synchronous_checkpoints=merged["synchronous_checkpoints"],
            session_url=merged.get("session_database_url"),
        )
        self.application_store = ApplicationStore(
            merged.get("application_database_url") or url, pool_size=merged["sys_db_pool_size"]
        )
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._migrated_pid = 0
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    def migrate(self) -> int:
        """Creates or upgrades both databases' tables (once per process); returns the
        system schema version."""
        version = self.store.migrate()
        self.application_store.migrate()
        self._migrated_pid = os.getpid()
        return version

    def engine(self) -> Engine:
        """This process's engine. It does not migrate (see :meth:`migrate`): it checks,
        once per process, that the schema is current."""
        pid = os.getpid()
        if self._engine is None or self._engine_pid != pid:
            with self._lock:
                if self._engine is None or self._engine_pid != pid:
                    self._engine = self._new_engine(pid)
                    self._engine_pid = pid
        return self._engine

    def worker_engine(self) -> Engine:
        """The engine of a worker process: the schemas are migrated on first use."""
        if self._migrated_pid != os.getpid():
            with self._lock:
                if self._migrated_pid != os.getpid():
                    self.migrate()
        return self.engine()

    def _new_engine(self, pid: int) -> Engine:
        self.store.require_current_schema()
        executor_id = self.config.get("executor_id") or f"{socket.gethostname()}:{pid}"
        if self.queues:
            # Before this process claims anything: a claim admits workflows by the
            # limits in the queues table, so they must be there.
            self.store.register(
                workflow_names=[], queues=list(self.queues.values()), executor_id=executor_id
            )
        return Engine(
            store=self.store,
            serializer=self.serializer,
            executor_id=executor_id,
            lookup=self.registry.get,
            launcher=self,
            dispatch=self.publish,
            application_version=self.application_version,
            version_live_ms=version_live_ms(self.config["recovery_interval_seconds"]),
        )

    @functools.cached_property
    def application_version(self) -> str:
        """The version of this process's code: configured, or computed (as DBOS does)
        from the workflows registered when it is first asked for (engine start)."""
        configured = self.config.get("application_version")
        if configured:
            return configured
        return compute_app_version(self.config["name"], self.registry.all())

    def dispose(self) -> None:
        self.store.dispose()
        self.application_store.dispose()

    @functools.cached_property
    def max_countdown_seconds(self) -> float:
        return publishing.max_countdown_seconds(
            self.celery, self.config.get("max_broker_delay_seconds")
        )

    @property
    def database_label(self) -> str:
        """The system database's URL with its password hidden (for messages)."""
        return redact(self.store.url)

    def register_served(self, executor_id: str) -> None:
        """Records the workflow names a worker serves (its queues: see ``engine``)."""
        self.worker_engine().store.register(
            workflow_names=[spec.name for spec in self.registry.all()],
            queues=[],
            executor_id=executor_id,
        )

    @functools.cached_property
    def schedules(self) -> ScheduleKeeper:
        """The cron schedules, fired by :meth:`keep_time`."""
        return ScheduleKeeper(self)

    def keep_time(self) -> int:
        """One timekeeping pass: cancels workflows past their deadline (waking their
        parents), publishes DELAYED workflows that are due, and fires the cron schedules'
        due ticks. Returns how many."""
        passed = self.store.keep_time(limit=1000)
        for workflow_id, parent in passed.cancelled:
            logger.info("Workflow %s reached its deadline: CANCELLED", workflow_id)
            if parent is not None:
                self.engine().wake(parent)
        for due in passed.due:
            # A failed publish is left to the recovery sweep: the row is ENQUEUED and due.
            publishing.publish_new_workflow(
                self.celery,
                due.name,
                due.workflow_uuid,
                queue=due.queue_name,
                generation=due.generation,
            )
        return len(passed.cancelled) + len(passed.due) + self.schedules.fire()

    def recover(self, executor_id: str | None = None) -> list[Redispatch]:
        """One recovery sweep (skipped, with an empty result, while another runs).

        A worker's sweep names the worker (``executor_id``): it records the worker's
        application version and publishes only workflows of that version (or of none).
        """
        return recover(
            self.store,
            self.celery,
            grace_seconds=self.config["recovery_grace_seconds"],
            app_version=None if executor_id is None else self.application_version,
            executor_id=executor_id,
        )

    def leave(self, executor_id: str) -> None:
        """A worker stops: its application version no longer counts as running."""
        self.store.forget_worker(executor_id)

    # -- creating and publishing workflows --------------------------------------------

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
        """A workflow's row, not yet written; its queue is resolved here, once."""
        # A queue named by the caller (Queue.enqueue, DBOSClient) admits the workflow
        # later: its timeout's deadline is fixed then.
        admitted_later = queue_name is not None and status == "ENQUEUED"
        queue = queue_name or publishing.resolve_queue(self.celery, spec.name)
        return new_workflow_row(
            self.serializer,
            spec,
            args,
            kwargs,
            status=status,
            queue_name=queue,
            limits=self.queues.get(queue),
            workflow_id=workflow_id,
            parent_workflow_id=parent_workflow_id,
            options=options,
            require_registered=require_registered,
            admitted_later=admitted_later,
            application_version=self.config.get("application_version"),
        )

    def insert(self, row: NewWorkflow) -> InsertedWorkflow:
        """Writes a workflow's row (see :meth:`new_row`), or finds the one with its id."""
        return self.store.insert_workflow(row)

    def enqueue(self, row: NewWorkflow) -> str:
        """Writes the row, then publishes it if it is new (a delayed one is published by
        timekeeping when it is due); returns the workflow id."""
        if self.insert(row).inserted and row.delay_until_epoch_ms is None:
            publishing.publish_new_workflow(
                self.celery, row.name, row.workflow_uuid, queue=row.queue_name
            )
        return row.workflow_uuid

    def start(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        queue: str | None,
    ) -> str:
        """Enqueues a workflow for the workers; returns its id."""
        return self.enqueue(self.new_row(spec, args, kwargs, status="ENQUEUED", queue_name=queue))

    async def start_async(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        queue: str | None,
    ) -> str:
        # The database work runs in a thread, with this task's SetWorkflowID and
        # SetEnqueueOptions (to_thread copies the context).
        workflow_id = await asyncio.to_thread(self.start, spec, args, kwargs, queue=queue)
        next_workflow_id.set(None)
        return workflow_id

    def publish(self, workflow_id: str, dispatch: Dispatch) -> None:
        publishing.publish_workflow(
            self.celery,
            dispatch.name,
            workflow_id,
            queue=dispatch.queue_name,
            generation=dispatch.generation,
        )

    # -- the engine's Launcher ---------------------------------------------------------

    @property
    def child_poll_seconds(self) -> float:
        return self.config["child_poll_seconds"]

    def start_child(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str,
        parent_workflow_id: str,
        publish: bool,
        queue_name: str | None = None,
    ) -> None:
        row = self.new_row(
            spec,
            args,
            kwargs,
            status="ENQUEUED",
            queue_name=queue_name,
            workflow_id=workflow_id,
            parent_workflow_id=parent_workflow_id,
        )
        if publish:
            self.enqueue(row)
        else:
            self.insert(row)

    def run_inline(
        self, workflow_id: str, spec: WorkflowSpec, *, new: NewWorkflow | None = None
    ) -> Any:
        """Runs a workflow to its end in this thread (retries and sleeps wait here)."""
        call = DirectCall(workflow_id, spec, new)
        engine = self.engine()
        while True:
            result: RunResult | RescheduleWorkflow
            try:
                result = engine.run(workflow_id, call.options)
            except RescheduleWorkflow as signal:
                result = signal
            if (wait := call.wait_after(result)) is None:
                break
            time.sleep(wait)
        known, output = call.outcome(self.serializer)
        return output if known else waiting.wait_for(self.store, self.serializer, workflow_id)

    async def run_inline_async(
        self, workflow_id: str, spec: WorkflowSpec, *, new: NewWorkflow | None = None
    ) -> Any:
        """``run_inline`` for an ``async def`` workflow, in the running event loop."""
        call = DirectCall(workflow_id, spec, new)
        engine = self.engine()
        while True:
            result: RunResult | RescheduleWorkflow
            try:
                result = await engine.run_async(workflow_id, call.options)
            except RescheduleWorkflow as signal:
                result = signal
            if (wait := call.wait_after(result)) is None:
                break
            await asyncio.sleep(wait)
        known, output = call.outcome(self.serializer)
        if known:
            return output
        return await waiting.wait_for_async(self.store, self.serializer, workflow_id)

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        """A direct call: the workflow's row is written in the round trip that claims
        it; calling a finished workflow again returns its recorded outcome."""
        row = self.new_row(spec, args, kwargs, status="PENDING")
        return self.run_inline(row.workflow_uuid, spec, new=row)

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        row = self.new_row(spec, args, kwargs, status="PENDING")
        return await self.run_inline_async(row.workflow_uuid, spec, new=row)

    # -- operating workflows ----------------------------------------------------------

    def cancel(self, workflow_id: str) -> None:
        """Cancels a workflow: it stops at its next step boundary; waits are dropped."""
        store = self.store
        if not store.cancel_workflow(workflow_id):
            if store.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
            return  # already finished: nothing to cancel
        row = store.get_workflow(workflow_id)
        if row is not None and row.parent_workflow_id is not None:
            self.engine().wake(row.parent_workflow_id)

    def resume(self, workflow_id: str) -> None:
        """Runs a cancelled or failed workflow again from its checkpoints."""
        dispatch = self.store.resume_workflow(workflow_id)
        if dispatch is None:
            if self.store.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
        else:
            self.publish(workflow_id, dispatch)

    def fork(
        self, workflow_id: str, start_step: int, application_version: str | None = None
    ) -> str:
        """A new workflow with the same inputs that replays the operations before
        ``start_step`` (a ``function_id``; the rule is ``core.forking``'s), on
        ``application_version`` (None: on the first worker that claims it)."""
        start_step = forking.start_step(start_step)
        if application_version is not None and (
            not isinstance(application_version, str) or not application_version
        ):
            raise DBOSException(
                f"application_version must be a non-empty string, not {application_version!r}"
            )
        forked_id = next_workflow_id.get() or str(uuid.uuid4())
        next_workflow_id.set(None)
        dispatch = self.store.fork_workflow(workflow_id, forked_id, start_step, application_version)
        self.publish(forked_id, dispatch)
        return forked_id
