"""The operations ``DBOS`` and ``DBOSClient`` share, each written once.

Both facades hold a :class:`WorkflowService` (one per configuration) and delegate every
shared operation to it, so a facade method is a signature, a docstring and one call.
An ``_async`` twin is the same operation, run in a thread: ``asyncio.to_thread`` copies
the caller's context, so ``SetWorkflowID`` and a running workflow travel with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from celery_durable.core.records import WorkflowStatus
from celery_durable.engine import children_and_sleep, recorded_calls
from celery_durable.engine.context import in_thread_in_call_order, in_workflow_code
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration.runtime import Runtime
from celery_durable.service import inspection
from celery_durable.service.app_versions import ApplicationVersions
from celery_durable.service.caller_transactions import CallerTransactions
from celery_durable.service.class_decorators import with_receiver
from celery_durable.service.decorators import spec_of
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import WorkflowManagement
from celery_durable.service.messages import MessageService
from celery_durable.service.overview import Overview
from celery_durable.service.queues import EnqueueRequest, QueueService
from celery_durable.service.reading import WorkflowReading
from celery_durable.service.schedules import ScheduleService
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
            self.runtime.in_process_worker.start()

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

    def reset_system_database(self, *, truncate: bool) -> None:
        """Destroys every workflow of the system database (tests only; before launch).

        Raises:
            DBOSException: the service was launched.
        """
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
        return self.handle(self._start(spec, with_receiver(workflow, args), kwargs, queue))

    async def start_async(
        self, workflow: Callable[..., Any], args: Any, kwargs: Any, *, queue: str | None
    ) -> WorkflowHandleAsync[Any]:
        spec = spec_of(workflow)
        args = with_receiver(workflow, args)
        if in_workflow_code() is not None:
            return self.handle_async(self._start(spec, args, kwargs, queue))
        starter = self.runtime.starter
        workflow_id = await starter.start_async(spec, tuple(args), dict(kwargs), queue=queue)
        return self.handle_async(workflow_id)

    def _start(self, spec: WorkflowSpec, args: Any, kwargs: Any, queue: str | None) -> str:
        parent = in_workflow_code()
        if parent is not None:
            return children_and_sleep.start_child(parent, spec, args, kwargs, queue_name=queue)
        return self.runtime.starter.start(spec, tuple(args), dict(kwargs), queue=queue)

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        """A direct call of a workflow, run to its end in this process."""
        return self.runtime.starter.call(spec, args, kwargs)

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        return await self.runtime.starter.call_async(spec, args, kwargs)

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
        self.runtime.operator.resume(
            workflow_id, queue_name=queue_name, include_failed=include_failed
        )
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
        """DBOS 3.4's ``fork_workflow`` (see ``WorkflowOperator.fork``); from workflow
        code, recorded as DBOS's ``DBOS.forkWorkflow`` operation: a replay returns the
        fork it made, instead of forking again."""
        forked = recorded_calls.call_recorded(
            recorded_calls.FORK_NAME,
            lambda: self.runtime.operator.fork(
                workflow_id,
                start_step,
                application_version,
                queue_name=queue_name,
                replacement_children=replacement_children,
                timeout_seconds=timeout_seconds,
            ),
        )
        return self.handle(forked)

    async def fork_async(
        self, workflow_id: str, start_step: int, **options: Any
    ) -> WorkflowHandleAsync[Any]:
        """``fork`` for async callers; ``options`` are ``fork``'s keywords."""
        forked = await in_thread_in_call_order(
            1, lambda: self.fork(workflow_id, start_step, **options)
        )
        return self.handle_async(forked.workflow_id)

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
