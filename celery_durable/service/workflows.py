"""The operations ``DBOS`` and ``DBOSClient`` share, each written once.

Both facades hold a :class:`WorkflowService` (one per configuration) and delegate every
shared operation to it, so a facade method is a signature, a docstring and one call.
An ``_async`` twin is the same operation, run in a thread: ``asyncio.to_thread`` copies
the caller's context, so ``SetWorkflowID`` and a running workflow travel with it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery

from celery_durable.core.records import WorkflowStatus
from celery_durable.engine import children_and_sleep, loops
from celery_durable.engine.context import (
    in_thread_in_call_order,
    in_workflow_code,
    next_workflow_id,
)
from celery_durable.engine.recorded_calls import FORK_NAME, RESUME_NAME, call_recorded
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration import loop_start, queue_consumers
from celery_durable.integration.enqueue import refuse_queue_only_options
from celery_durable.integration.receivers import refuse_another_receiver
from celery_durable.integration.runtime import Runtime
from celery_durable.service import inspection
from celery_durable.service.app_versions import ApplicationVersions
from celery_durable.service.caller_transactions import CallerTransactions
from celery_durable.service.class_decorators import with_receiver
from celery_durable.service.decorators import spec_of
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.loop_handles import TaskWorkflowHandleAsync
from celery_durable.service.management import WorkflowManagement
from celery_durable.service.messages import MessageService
from celery_durable.service.overview import Overview
from celery_durable.service.queues import EnqueueRequest, QueueService
from celery_durable.service.reading import WorkflowReading
from celery_durable.service.schedules import ScheduleService
from celery_durable.service.temp_workflows import check_not_shadowed
from celery_durable.service.waiting import WaitingService
from celery_durable.store import Redispatch, WorkerVersion
from celery_durable.store.application import ApplicationStore


class WorkflowService:
    """Starting, operating and reading workflows, and messages outside workflow code,
    for one configuration (its :class:`~celery_durable.integration.runtime.Runtime`).

    ``schedules`` holds the cron schedules' operations, ``queues`` the queues'
    declared at run time, ``waiting`` DBOS 3.4's calls for waiting on and inspecting
    workflows, ``management`` those for managing workflows that exist, ``versions``
    the application versions, ``reading`` the workflow and step listings,
    ``messages`` messages, events and streams.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schedules = ScheduleService(runtime, self.handle)
        self.queues = QueueService(runtime)
        self.waiting = WaitingService(runtime, self.handle_async)
        self.management = WorkflowManagement(runtime, self.handle, self.handle_async)
        self.versions = ApplicationVersions(runtime)
        self.reading = WorkflowReading(runtime)
        self.messages = MessageService(runtime)
        # DBOSClient's writes in the caller's transaction, and its connection check.
        self.transactions = CallerTransactions(runtime)
        self._on_release: list[Callable[[], None]] = []
        self.launched = False
        self.listened_queues: list[str] | None = None

    # -- the process ------------------------------------------------------------------

    def launch(self) -> None:
        """Migrates both databases, starts this process's engine (which records the
        queues), records its application version and writes the ``@DBOS.scheduled``
        schedules."""
        self.runtime.process.migrate()
        self.runtime.process.engine()
        self.versions.register_version()
        self.runtime.operator.schedules.write_declared()
        self.launched = True
        if self.runtime.in_process_worker is not None:
            # Launched in a running event loop (the program's main loop): the workflows
            # this process runs run on it, as DBOS 3.4's do (engine.loops).
            loops.adopt_running_loop()
            loops.keep_loops()
            self.runtime.in_process_worker.start()

    def listen_queues(self, names: Sequence[str]) -> None:
        """This process's workers consume the default queue and ``names`` only, of the
        queues declared or registered (see ``DBOS.listen_queues``).

        Raises:
            DBOSException: after launch, a second time, or names that are not
                non-empty strings (as DBOS checks them).
        """
        when = "after DBOS is launched" if self.launched else "more than once"
        if self.launched or self.listened_queues is not None:
            raise DBOSException(f"listen_queues called {when}")
        self.listened_queues = queue_consumers.listen_only(self.runtime.process.celery, names)

    def refresh_worker(self) -> None:
        """Lets the in-process worker, if it runs, serve what was declared since it
        started (workflows, queues)."""
        if self.runtime.in_process_worker is not None:
            self.runtime.in_process_worker.refresh()

    def stop_worker(self, workflow_completion_timeout_sec: float) -> None:
        """Stops the in-process worker, if it runs, waiting up to the timeout for the
        workflows it is running."""
        if self.runtime.in_process_worker is not None:
            self.runtime.in_process_worker.stop(workflow_completion_timeout_sec)
            loops.release_adopted_loop()
            loops.finalize_kept_loops()

    def reset_system_database(self, *, truncate: bool) -> None:
        """Destroys every workflow of the system database (tests only); raises
        ``DBOSException`` once the service was launched."""
        if self.launched:
            raise DBOSException(
                "The system database cannot be reset after DBOS is launched: call "
                "DBOS.reset_system_database() before DBOS.launch() (tests only)"
            )
        self.runtime.process.store.schema.reset(truncate=truncate)

    def recover(self) -> list[Redispatch]:
        """One recovery sweep now (nothing while another sweep runs)."""
        return self.runtime.operator.recover()

    @property
    def application_version(self) -> str:
        return self.runtime.process.application_version

    @property
    def celery(self) -> Celery:
        return self.runtime.process.celery

    @property
    def application_store(self) -> ApplicationStore:
        """The database ``@DBOS.transaction`` runs in."""
        return self.runtime.process.application_store

    def on_release(self, callback: Callable[[], None]) -> None:
        """Runs ``callback`` when the service is released (before its pools close)."""
        self._on_release.append(callback)

    def release(self) -> None:
        """Closes the service's connections (and whatever was wired to it)."""
        self.stop_worker(0)
        if self.listened_queues is not None:
            queue_consumers.listen_only(self.runtime.process.celery, None)
        for callback in self._on_release:
            callback()
        self.runtime.process.dispose()

    # -- handles and starting ---------------------------------------------------------

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        process = self.runtime.process
        return WorkflowHandle(workflow_id, process.store, process.serializer)

    def handle_async(self, workflow_id: str) -> WorkflowHandleAsync[Any]:
        process = self.runtime.process
        return WorkflowHandleAsync(workflow_id, process.store, process.serializer)

    def start(
        self, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandle[Any]:
        """Enqueues a ``@DBOS.workflow()`` function (in workflow code: starts a child)."""
        spec = spec_of(workflow)
        check_not_shadowed(spec, self.runtime.process.registry)
        return self.handle(self._start(spec, with_receiver(workflow, args), kwargs, queue))

    async def start_async(
        self, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandleAsync[Any]:
        spec = spec_of(workflow)
        check_not_shadowed(spec, self.runtime.process.registry)
        args = with_receiver(workflow, args)
        if in_workflow_code() is not None:
            return self.handle_async(self._start(spec, args, kwargs, queue))
        if queue is None:
            refuse_queue_only_options()
        if next_workflow_id.get() is not None:
            await asyncio.to_thread(self._refuse_another_receiver, spec, args)
        starter = self.runtime.starter
        if queue is None and spec.is_async and self.runtime.in_process_worker is not None:
            # The program is its own worker: on this loop, as DBOS runs it.
            workflow_id, task = await loop_start.start_on_running_loop(
                starter, spec, tuple(args), dict(kwargs)
            )
            if task is None:
                return self.handle_async(workflow_id)
            process = self.runtime.process
            return TaskWorkflowHandleAsync(workflow_id, process.store, process.serializer, task)
        workflow_id = await starter.start_async(spec, tuple(args), dict(kwargs), queue=queue)
        return self.handle_async(workflow_id)

    def _start(self, spec: WorkflowSpec, args: Any, kwargs: Any, queue: str | None) -> str:
        if queue is None:
            refuse_queue_only_options()
        parent = in_workflow_code()
        if parent is not None:
            return children_and_sleep.start_child(parent, spec, args, kwargs, queue_name=queue)
        self._refuse_another_receiver(spec, args)
        return self.runtime.starter.start(spec, tuple(args), dict(kwargs), queue=queue)

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        """A direct call of a workflow, run to its end in this process."""
        self._refuse_another_receiver(spec, args)
        return self.runtime.starter.call(spec, args, kwargs)

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        if next_workflow_id.get() is not None:
            await asyncio.to_thread(self._refuse_another_receiver, spec, args)
        return await self.runtime.starter.call_async(spec, args, kwargs)

    def _refuse_another_receiver(self, spec: WorkflowSpec, args: Any) -> None:
        """:func:`refuse_another_receiver` for the id ``SetWorkflowID`` set, if any."""
        if (workflow_id := next_workflow_id.get()) is not None:
            process = self.runtime.process
            refuse_another_receiver(process.store, process.serializer, spec, (*args,), workflow_id)

    def enqueue_request(
        self, request: EnqueueRequest, args: Any, kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Enqueues a workflow by name (DBOS's ``EnqueueOptions``): from a client, or from
        an application (in workflow code, as a child)."""
        return self.handle(self.queues.enqueue(request, args, kwargs))

    async def enqueue_request_async(
        self, request: EnqueueRequest, args: Any, kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        return self.handle_async(await self.queues.enqueue_async(request, args, kwargs))

    # -- operating --------------------------------------------------------------------

    def cancel(self, workflow_id: str) -> None:
        self.runtime.operator.cancel(workflow_id)

    def resume(
        self, workflow_id: str, *, queue_name: str | None = None, include_failed: bool = False
    ) -> WorkflowHandle[Any]:
        resume = functools.partial(
            self.runtime.operator.resume, queue_name=queue_name, include_failed=include_failed
        )
        call_recorded(RESUME_NAME, lambda: resume(workflow_id))
        return self.handle(workflow_id)

    def fork(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandle[Any]:
        """DBOS 3.4's ``fork_workflow`` (see ``WorkflowOperator.fork``)."""
        fork = functools.partial(
            self.runtime.operator.fork,
            queue_name=queue_name,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )
        return self.handle(
            call_recorded(FORK_NAME, lambda: fork(workflow_id, start_step, application_version))
        )

    async def fork_async(
        self, workflow_id: str, start_step: int, **options: Any
    ) -> WorkflowHandleAsync[Any]:
        """``fork`` for async callers; ``options`` are ``fork``'s keywords."""
        fork = functools.partial(self.fork, workflow_id, start_step, **options)
        return self.handle_async((await in_thread_in_call_order(1, fork)).workflow_id)

    # -- reading ----------------------------------------------------------------------

    def retrieve(self, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        workflows = self.runtime.process.store.workflows
        if existing_workflow and workflows.get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return self.handle(workflow_id)

    def unregistered_note(self, status: WorkflowStatus) -> str | None:
        return inspection.unregistered_note(self.runtime.process.store, status)

    def list_worker_versions(self) -> list[WorkerVersion]:
        return self.runtime.process.store.workers.list_worker_versions()

    def overview(self) -> Overview:
        return Overview(self.runtime.process.store, self.runtime.process.serializer)
