"""Queues declared at run time, as DBOS 3.x declares them: one set of operations under
both facades (``DBOS.register_queue`` and ``DBOSClient.register_queue`` alike).

A queue is a Celery queue of the same name whose limits live in the ``queues`` table.
Registering one also tells the running workers to consume it (see
:mod:`celery_durable.integration.queue_consumers`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

from celery_durable.engine import children_and_sleep
from celery_durable.engine.context import enqueue_options, in_workflow_code, next_workflow_id
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import (
    DBOSException,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowIDInUseError,
)
from celery_durable.integration.enqueue import EnqueueSettings
from celery_durable.integration.queue_consumers import announce_queue
from celery_durable.integration.runtime import Runtime
from celery_durable.service import trace_context
from celery_durable.store import NewWorkflow, QueueLimits
from celery_durable.store.queue_store import OnConflict

ON_CONFLICT_CHOICES = ("update_if_latest_version", "always_update", "never_update")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnqueueRequest:
    """A workflow to enqueue by name (DBOS's ``EnqueueOptions``, checked).

    ``reject_reused_id``: an id in use raises ``DBOSWorkflowIDInUseError`` (else the
    existing workflow's handle is returned); ``return_deduplicated``: a taken
    deduplication id returns the holder's handle (else ``DBOSQueueDeduplicatedError``).
    """

    spec: WorkflowSpec
    queue_name: str | None
    workflow_id: str | None
    settings: EnqueueSettings
    require_registered: bool
    reject_reused_id: bool = False
    return_deduplicated: bool = False
    # The caller's SetEnqueueOptions fill the settings left unset (DBOS's application
    # enqueue; a client's options are the whole request).
    with_ambient_options: bool = False
    # An OpenTelemetry Context (EnqueueOptions' otel_context): current while the
    # workflow is enqueued, so that its Celery message carries its trace.
    otel_context: Any = None

    def effective_settings(self) -> EnqueueSettings:
        if not self.with_ambient_options:
            return self.settings
        merged: dict[str, Any] = dict(enqueue_options.get() or {})
        merged.update({key: value for key, value in self.settings.items() if value is not None})
        return cast(EnqueueSettings, merged)


class QueueService:
    """Registering, reading, changing and deleting queues by name."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def register(
        self, limits: QueueLimits, on_conflict: OnConflict, *, versioned: bool = True
    ) -> tuple[QueueLimits, bool]:
        """Writes the queue (as ``on_conflict`` says, if one has its name) and tells the
        workers; returns the queue as stored and whether it was new.

        ``versioned``: the caller runs application code, whose version the row records
        (False for a client: it has no version, so ``update_if_latest_version`` cannot
        apply and is refused, as in DBOS).
        """
        if on_conflict not in ON_CONFLICT_CHOICES:
            raise DBOSException(
                f"on_conflict must be one of {', '.join(ON_CONFLICT_CHOICES)}, not {on_conflict!r}"
            )
        if not versioned and on_conflict == "update_if_latest_version":
            raise DBOSException(
                "A client has no application version: register the queue with "
                'on_conflict="always_update" or "never_update"'
            )
        process = self.runtime.process
        version = process.application_version if versioned else None
        limits = dataclasses.replace(limits, registered=True, application_version=version)
        inserted = process.store.queues.register(limits, on_conflict)
        announce_queue(process.celery, limits.name)
        stored = self.retrieve(limits.name)
        if stored is None:  # deleted in between
            raise DBOSException(f"Queue {limits.name} was deleted while it was registered")
        return stored, inserted

    async def register_async(
        self, limits: QueueLimits, on_conflict: OnConflict, *, versioned: bool = True
    ) -> tuple[QueueLimits, bool]:
        return await asyncio.to_thread(self.register, limits, on_conflict, versioned=versioned)

    def retrieve(self, name: str) -> QueueLimits | None:
        return self.runtime.process.store.queues.get(name)

    async def retrieve_async(self, name: str) -> QueueLimits | None:
        return await asyncio.to_thread(self.retrieve, name)

    def list_all(self) -> list[QueueLimits]:
        return self.runtime.process.store.queues.list_all()

    async def list_all_async(self) -> list[QueueLimits]:
        return await asyncio.to_thread(self.list_all)

    def delete(self, name: str) -> None:
        """Deletes the queue's row: its limits no longer hold (its workflows stay)."""
        self.runtime.process.store.queues.delete(name)

    async def delete_async(self, name: str) -> None:
        await asyncio.to_thread(self.delete, name)

    def update(self, name: str, values: dict[str, Any]) -> QueueLimits:
        """Changes some of a queue's limits; returns the queue as stored.

        Raises:
            DBOSException: no such queue.
        """
        store = self.runtime.process.store.queues
        if not store.update(name, values):
            raise DBOSException(f"Queue {name} not found in the database")
        stored = store.get(name)
        if stored is None:
            raise DBOSException(f"Queue {name} not found in the database")
        return stored

    def required(self, name: str) -> QueueLimits:
        """The queue as stored.

        Raises:
            DBOSException: no such queue.
        """
        stored = self.retrieve(name)
        if stored is None:
            raise DBOSException(f"Queue {name} not found in the database")
        return stored

    # -- enqueueing by name ---------------------------------------------------------------

    def enqueue(self, request: EnqueueRequest, args: Any, kwargs: Any) -> str:
        """Enqueues the request's workflow (in workflow code: as a child); returns its id."""
        with trace_context.propagated_context(request.otel_context):
            return self._enqueue(request, args, kwargs)

    def _enqueue(self, request: EnqueueRequest, args: Any, kwargs: Any) -> str:
        settings = request.effective_settings()
        parent = in_workflow_code()
        if parent is not None:
            options_token = enqueue_options.set(settings)
            id_token = next_workflow_id.set(request.workflow_id)
            try:
                return children_and_sleep.start_child(
                    parent, request.spec, args, kwargs, queue_name=request.queue_name
                )
            finally:
                next_workflow_id.reset(id_token)
                enqueue_options.reset(options_token)
        starter = self.runtime.starter
        row = starter.new_row(
            request.spec,
            tuple(args),
            dict(kwargs),
            status="ENQUEUED",
            queue_name=request.queue_name,
            workflow_id=request.workflow_id,
            options=settings,
            require_registered=request.require_registered,
        )
        return self._insert_and_publish(request, row)

    def _insert_and_publish(self, request: EnqueueRequest, row: NewWorkflow) -> str:
        process = self.runtime.process
        try:
            found = self.runtime.starter.insert(row)
        except DBOSQueueDeduplicatedError:
            holder = None
            if request.return_deduplicated and row.queue_name and row.deduplication_id:
                holder = process.store.queues.deduplication_holder(
                    row.queue_name, row.deduplication_id
                )
            if holder is None:
                raise
            return holder
        if not found.inserted:
            if request.reject_reused_id:
                raise DBOSWorkflowIDInUseError(row.workflow_uuid, found.status, found.name)
            return row.workflow_uuid
        if row.delay_until_epoch_ms is None:
            self.runtime.starter.publish_new(row)
        return row.workflow_uuid

    async def enqueue_async(self, request: EnqueueRequest, args: Any, kwargs: Any) -> str:
        if in_workflow_code() is not None:  # the workflow's own operation, in its thread
            return self.enqueue(request, args, kwargs)
        return await asyncio.to_thread(self.enqueue, request, args, kwargs)
