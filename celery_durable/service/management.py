"""DBOS 3.4's calls for managing workflows that exist (cancel, resume, rewind, delete,
attributes, delays), each written once for ``DBOS`` and ``DBOSClient`` (the ``_async``
twins run it in a thread).

The statements are the store's (``store.management``, ``store.operations``); what
runs a workflow again (resume, rewind) goes through the runtime's operator and
starter, which publish it. Waiting and inspecting are ``service/waiting.py``'s,
application versions ``service/app_versions.py``'s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.engine import streams
from celery_durable.engine.recorded_calls import (
    CANCEL_NAME,
    DELETE_NAME,
    RESUME_NAME,
    call_recorded,
)
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration.runtime import Runtime
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync


def refuse_shard_key(shard_key: str | None) -> None:
    """A celery_durable system database is not sharded: a shard key cannot be honoured
    (DBOS raises the same on an unsharded database)."""
    if shard_key is not None:
        raise DBOSException(
            "A shard key requires a sharded system database: sharding is not supported "
            f"by celery_durable (got shard_key={shard_key!r}; pass None)"
        )


def refuse_partition_key(queue_partition_key: str | None) -> None:
    """A fork or rewind onto a partition of a queue: celery_durable's queues have no
    partitions here, so the key cannot be honoured."""
    if queue_partition_key is not None:
        raise DBOSException(
            "queue_partition_key is not supported by fork_workflow/rewind_workflow here: "
            "pass queue_name= a queue of its own for the partition instead"
        )


class WorkflowManagement:
    """One configuration's calls on workflows that exist (``service.management``)."""

    def __init__(
        self,
        runtime: Runtime,
        handle: Callable[[str], WorkflowHandle[Any]],
        handle_async: Callable[[str], WorkflowHandleAsync[Any]],
    ) -> None:
        self.runtime = runtime
        self._handle = handle
        self._handle_async = handle_async

    def with_descendants(self, workflow_ids: list[str], include: bool) -> list[str]:
        """The ids, then (``include``) every workflow they started, recursively."""
        if not include:
            return list(workflow_ids)
        found = self.runtime.process.store.management.descendants(list(workflow_ids))
        return [*workflow_ids, *(d for d in found if d not in workflow_ids)]

    def delete_workflows(self, workflow_ids: list[str], delete_children: bool) -> None:
        """Deletes the workflows (and with ``delete_children`` every workflow they
        started) with everything recorded for them. Ids that do not exist are skipped."""

        def delete() -> None:
            doomed = self.with_descendants(workflow_ids, delete_children)
            self.runtime.process.store.management.delete_workflows(doomed)

        call_recorded(DELETE_NAME, delete)

    def cancel_workflows(self, workflow_ids: list[str], cancel_children: bool) -> None:
        """Cancels each workflow (and with ``cancel_children`` every workflow they
        started, recursively).

        Raises:
            DBOSNonExistentWorkflowError: one of ``workflow_ids`` does not exist.
        """

        def cancel() -> None:
            for workflow_id in self.with_descendants(workflow_ids, cancel_children):
                self.runtime.operator.cancel(workflow_id)

        call_recorded(CANCEL_NAME, cancel)

    def resume_workflows(
        self, workflow_ids: list[str], queue_name: str | None
    ) -> list[WorkflowHandle[Any]]:
        """Resumes each (``WorkflowService.resume``), on ``queue_name`` if given.

        Raises:
            DBOSNonExistentWorkflowError: any id does not exist (checked before any
                is resumed, as DBOS does).
        """
        workflows = self.runtime.process.store.workflows

        def resume() -> None:
            missing = [w for w in workflow_ids if workflows.get_outcome(w) is None]
            if missing:
                raise DBOSNonExistentWorkflowError(", ".join(missing))
            for workflow_id in workflow_ids:
                self.runtime.operator.resume(workflow_id, queue_name=queue_name)

        call_recorded(RESUME_NAME, resume)
        return [self._handle(workflow_id) for workflow_id in workflow_ids]

    async def resume_workflows_async(
        self, workflow_ids: list[str], queue_name: str | None
    ) -> list[WorkflowHandleAsync[Any]]:
        await asyncio.to_thread(self.resume_workflows, workflow_ids, queue_name)
        return [self._handle_async(workflow_id) for workflow_id in workflow_ids]

    def rewind_workflow(
        self,
        workflow_id: str,
        start_step: int | None,
        application_version: str | None,
        queue_name: str | None,
    ) -> WorkflowHandle[Any]:
        """Re-runs a finished workflow from ``start_step`` (default 1) under its own id:
        what it recorded from there on is dropped (checkpoints, events set there, which
        go back to their earlier values, messages it consumed there or has not, its
        streams' close markers), and it is enqueued again, on ``queue_name`` and
        ``application_version`` if given.

        Raises:
            ValueError: ``start_step`` below 1 (as DBOS).
            DBOSNonExistentWorkflowError: no such workflow.
            DBOSException: it has not finished (cancel it first).
        """
        step = 1 if start_step is None else start_step
        if step < 1:
            raise ValueError(f"start_step must be >= 1, got {step}")
        process = self.runtime.process
        dispatch = process.store.management.rewind(
            workflow_id,
            step,
            closed_marker=process.serializer.dumps(streams.STREAM_CLOSED),
            queue_name=queue_name,
            application_version=application_version,
        )
        self.runtime.starter.publish(workflow_id, dispatch)
        return self._handle(workflow_id)

    async def rewind_workflow_async(
        self,
        workflow_id: str,
        start_step: int | None,
        application_version: str | None,
        queue_name: str | None,
    ) -> WorkflowHandleAsync[Any]:
        await asyncio.to_thread(
            self.rewind_workflow, workflow_id, start_step, application_version, queue_name
        )
        return self._handle_async(workflow_id)

    def update_workflow_attributes(
        self, workflow_id: str, attributes: dict[str, Any] | None, merge: bool
    ) -> None:
        """Replaces the workflow's attributes (None: clears them), or with ``merge``
        merges their top-level keys in.

        Raises:
            DBOSException: ``merge`` with None, or attributes that are not a JSON object.
            DBOSNonExistentWorkflowError: no such workflow.
        """
        if merge and attributes is None:
            raise DBOSException("Cannot merge None into workflow attributes")
        if attributes is not None and not isinstance(attributes, dict):
            raise DBOSException("Workflow attributes must be a dict (a JSON object)")
        try:
            encoded = None if attributes is None else json.dumps(attributes)
        except (TypeError, ValueError) as error:
            message = f"Workflow attributes must be JSON-serializable: {error}"
            raise DBOSException(message) from error
        management = self.runtime.process.store.management
        if not management.update_attributes(workflow_id, encoded, merge=merge):
            raise DBOSNonExistentWorkflowError(workflow_id)

    def set_workflow_delay(
        self, workflow_id: str, delay_seconds: float | None, delay_until_epoch_ms: int | None
    ) -> None:
        """Moves a DELAYED workflow's start (a workflow that is not DELAYED is left
        alone, as in DBOS).

        Raises:
            DBOSException: neither or both given, or a negative one (as DBOS).
        """
        if delay_until_epoch_ms is not None and delay_seconds is not None:
            raise DBOSException("Specify either delay_seconds or delay_until_epoch_ms, not both")
        if delay_until_epoch_ms is not None:
            if delay_until_epoch_ms < 0:
                raise DBOSException("delay_until_epoch_ms must be >= 0")
            until = delay_until_epoch_ms
        elif delay_seconds is not None:
            if delay_seconds < 0:
                raise DBOSException("delay_seconds must be >= 0")
            until = now_epoch_ms() + round(delay_seconds * 1000)
        else:
            raise DBOSException("Must specify either delay_seconds or delay_until_epoch_ms")
        self.runtime.process.store.management.set_delay(workflow_id, until)
