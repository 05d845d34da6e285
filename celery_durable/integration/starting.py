"""Starting workflows: building their rows, writing and publishing them, and running
direct calls in-process. :class:`WorkflowStarter` is the engine's
:class:`~celery_durable.engine.launcher.Launcher`: it creates and publishes child
workflows and runs awaited ones inline."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import loops, outcome_polling
from celery_durable.engine.context import next_workflow_id
from celery_durable.engine.executor import RunResult
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSQueueDeduplicatedError, DBOSWorkflowIDInUseError
from celery_durable.integration import publishing, task_calls
from celery_durable.integration.direct import DirectCall
from celery_durable.integration.enqueue import EnqueueSettings, new_workflow_row
from celery_durable.integration.process import ProcessServices
from celery_durable.store import Dispatch, InsertedWorkflow, NewWorkflow


class WorkflowStarter:
    """Creates workflows (rows, enqueueing, publishing) and runs direct calls."""

    def __init__(self, process: ProcessServices) -> None:
        self.process = process
        # A producer without a broker: its workers publish what it commits, told by
        # NOTIFY (see integration.enqueue_relay).
        self.through_postgres = False

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
        process = self.process
        # A queue named by the caller (Queue.enqueue, DBOSClient) admits the workflow
        # later: its timeout's deadline is fixed then.
        admitted_later = queue_name is not None and status == "ENQUEUED"
        queue = queue_name or publishing.resolve_queue(process.celery, spec.name)
        return new_workflow_row(
            process.serializer,
            spec,
            args,
            kwargs,
            status=status,
            queue_name=queue,
            limits=process.queues.get(queue),
            workflow_id=workflow_id,
            parent_workflow_id=parent_workflow_id,
            options=options,
            require_registered=require_registered,
            admitted_later=admitted_later,
            application_version=process.config.get("application_version"),
        )

    def insert(self, row: NewWorkflow) -> InsertedWorkflow:
        """Writes a workflow's row (see :meth:`new_row`), or finds the one with its id."""
        return self.process.store.workflows.insert_workflow(row)

    def enqueue(self, row: NewWorkflow) -> str:
        """Writes the row, then publishes it if it is new (a delayed one is published by
        timekeeping when it is due); returns the workflow id (with the row's
        ``return_deduplicated``, a taken deduplication id's holder).

        Raises:
            DBOSWorkflowIDInUseError: the row's ``reject_reused_id`` and its id is in use.
            DBOSQueueDeduplicatedError: its deduplication id is taken (see above).
        """
        try:
            found = self.insert(row)
        except DBOSQueueDeduplicatedError:
            holder = None
            if row.return_deduplicated and row.queue_name and row.deduplication_id:
                holder = self.process.store.queues.deduplication_holder(
                    row.queue_name, row.deduplication_id
                )
            if holder is None:
                raise
            return holder
        if found.inserted and row.delay_until_epoch_ms is None:
            self.publish_new(row)
        elif not found.inserted and row.reject_reused_id:
            raise DBOSWorkflowIDInUseError(row.workflow_uuid, found.status, found.name)
        return row.workflow_uuid

    def _insert_new(self, row: NewWorkflow) -> None:
        found = self.insert(row)
        if not found.inserted and row.reject_reused_id:
            raise DBOSWorkflowIDInUseError(row.workflow_uuid, found.status, found.name)

    def publish_new(self, row: NewWorkflow) -> None:
        """Publishes a workflow just inserted: its Celery message, or, for a producer
        without a broker, a notification a worker's relay publishes."""
        if self.through_postgres:
            self.process.store.operations.notify_enqueued(row.workflow_uuid, 0)
        else:
            publishing.publish_new_workflow(
                self.process.celery, row.name, row.workflow_uuid, queue=row.queue_name
            )

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
        row = await asyncio.to_thread(
            self.new_row, spec, args, kwargs, status="ENQUEUED", queue_name=queue
        )
        next_workflow_id.set(None)
        if queue is not None or not self.process.config.get("in_process_worker"):
            return await asyncio.to_thread(self.enqueue, row)
        # As in DBOS, it runs in this event loop if this process's worker executes it.
        loops.remember_home_loop(row.workflow_uuid, asyncio.get_running_loop())
        try:
            return await asyncio.to_thread(self.enqueue, row)
        except BaseException:
            loops.forget_home_loop(row.workflow_uuid)
            raise

    def publish(self, workflow_id: str, dispatch: Dispatch) -> None:
        """Publishes a workflow that a message, an event or an operation made due."""
        if self.through_postgres:
            self.process.store.operations.notify_enqueued(workflow_id, dispatch.generation)
            return
        publishing.publish_workflow(
            self.process.celery,
            dispatch.name,
            workflow_id,
            queue=dispatch.queue_name,
            generation=dispatch.generation,
        )

    # -- the engine's Launcher ---------------------------------------------------------

    @property
    def child_poll_seconds(self) -> float:
        return self.process.config["child_poll_seconds"]

    def dispatch_task(
        self, signature: Any, *, task_id: str, workflow_id: str, function_id: int
    ) -> None:
        task_calls.dispatch(
            self.process.celery,
            signature,
            task_id=task_id,
            workflow_id=workflow_id,
            function_id=function_id,
        )

    def report_unsent_task(
        self, workflow_id: str, function_id: int, task_id: str, error: BaseException
    ) -> None:
        task_calls.report_unsent(self.process, workflow_id, function_id, task_id, error)

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
        engine = self.process.engine()
        while True:
            result: RunResult | RescheduleWorkflow
            try:
                result = engine.run(workflow_id, call.options)
            except RescheduleWorkflow as signal:
                result = signal
            if (wait := call.wait_after(result)) is None:
                break
            time.sleep(wait)
        serializer = self.process.serializer
        known, output = call.outcome(serializer)
        return (
            output
            if known
            else outcome_polling.wait_for(self.process.store, serializer, workflow_id)
        )

    async def run_inline_async(
        self, workflow_id: str, spec: WorkflowSpec, *, new: NewWorkflow | None = None
    ) -> Any:
        """``run_inline`` for an ``async def`` workflow, in the running event loop."""
        call = DirectCall(workflow_id, spec, new)
        engine = self.process.engine()
        while True:
            result: RunResult | RescheduleWorkflow
            try:
                result = await engine.run_async(workflow_id, call.options)
            except RescheduleWorkflow as signal:
                result = signal
            if (wait := call.wait_after(result)) is None:
                break
            await asyncio.sleep(wait)
        serializer = self.process.serializer
        known, output = call.outcome(serializer)
        if known:
            return output
        return await outcome_polling.wait_for_async(self.process.store, serializer, workflow_id)

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        """A direct call: the workflow's row is written in the round trip that claims
        it; calling a finished workflow again returns its recorded outcome."""
        row = self.new_row(spec, args, kwargs, status="PENDING")
        if row.attributes is not None or row.reject_reused_id:
            # call_workflow's one round trip has no place for attributes nor for
            # rejecting an id in use: the row is written first (one statement more,
            # only in a SetWorkflowAttributes block or SetWorkflowID(..., "reject")).
            self._insert_new(row)
            return self.run_inline(row.workflow_uuid, spec)
        return self.run_inline(row.workflow_uuid, spec, new=row)

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any:
        row = self.new_row(spec, args, kwargs, status="PENDING")
        if row.attributes is not None or row.reject_reused_id:  # as in call
            await asyncio.to_thread(self._insert_new, row)
            return await self.run_inline_async(row.workflow_uuid, spec)
        return await self.run_inline_async(row.workflow_uuid, spec, new=row)
