"""DBOS 3.4's calls for waiting on, inspecting and managing workflows that exist, each
written once for ``DBOS`` and ``DBOSClient`` (the ``_async`` twins run it in a thread).

The statements are the store's (``store.management``, ``store.operations``); what
runs a workflow again (resume, fork) goes through the runtime's operator, which
publishes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.outcomes import decode_status
from celery_durable.core.records import VersionInfo, WorkflowStatus
from celery_durable.engine import children_and_sleep, outcome_polling, recorded_calls, streams
from celery_durable.engine.context import in_workflow_code
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration.runtime import Runtime
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync

# DBOS's DEFAULT_POLLING_INTERVAL, wait_first's default.
DEFAULT_POLLING_INTERVAL = 1.0


def refuse_shard_key(shard_key: str | None) -> None:
    """A celery_durable system database is not sharded: a shard key cannot be honoured
    (DBOS raises the same on an unsharded database)."""
    if shard_key is not None:
        raise DBOSException("A shard key requires a sharded system database")


def refuse_partition_key(queue_partition_key: str | None) -> None:
    """A fork or rewind onto a partition of a queue: celery_durable's queues have no
    partitions here, so the key cannot be honoured."""
    if queue_partition_key is not None:
        raise DBOSException(
            "queue_partition_key is not supported by fork_workflow/rewind_workflow here: "
            "pass queue_name= a queue of its own for the partition instead"
        )


class WorkflowManagement:
    """One configuration's waiting, inspecting and managing calls (``service.management``)."""

    def __init__(
        self,
        runtime: Runtime,
        handle: Callable[[str], WorkflowHandle[Any]],
        handle_async: Callable[[str], WorkflowHandleAsync[Any]],
    ) -> None:
        self.runtime = runtime
        self._handle = handle
        self._handle_async = handle_async

    # -- waiting and inspecting -------------------------------------------------------

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus | None:
        """The workflow's status, None if it does not exist (recorded as DBOS's
        ``DBOS.getStatus`` operation when workflow code asks)."""
        store, serializer = self.runtime.process.store, self.runtime.process.serializer
        return recorded_calls.recorded_status(
            lambda: (
                decode_status(row, serializer)
                if (row := store.workflows.get_workflow(workflow_id)) is not None
                else None
            )
        )

    async def get_workflow_status_async(self, workflow_id: str) -> WorkflowStatus | None:
        return await asyncio.to_thread(self.get_workflow_status, workflow_id)

    async def retrieve_async(
        self, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandleAsync[Any]:
        """An async handle; with ``existing_workflow``, only to a workflow that exists.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        workflows = self.runtime.process.store.workflows
        if (
            existing_workflow
            and await asyncio.to_thread(workflows.get_outcome, workflow_id) is None
        ):
            raise DBOSNonExistentWorkflowError(workflow_id)
        return self._handle_async(workflow_id)

    def get_result(self, workflow_id: str) -> Any:
        """Waits for the workflow's outcome (one not written yet is waited for, as in
        DBOS); in workflow code, the durable wait of ``WorkflowHandle.get_result``."""
        parent = in_workflow_code()
        if parent is not None:
            return children_and_sleep.await_result(parent, workflow_id)
        process = self.runtime.process
        return outcome_polling.wait_for(
            process.store, process.serializer, workflow_id, wait_for_creation=True
        )

    async def get_result_async(self, workflow_id: str) -> Any:
        return await asyncio.to_thread(self.get_result, workflow_id)

    def wait_first(self, workflow_ids: Sequence[str], polling_interval_sec: float) -> str:
        """The id of the first of these workflows to finish, polling every
        ``polling_interval_sec`` seconds.

        Raises:
            ValueError: no ids, or one twice (as DBOS).
            DBOSException: called in workflow code, where the choice would not be
                recorded (await each handle's ``get_result`` there).
        """
        if not workflow_ids:
            raise ValueError("handles must not be empty")
        if len(set(workflow_ids)) != len(workflow_ids):
            raise ValueError("handles must not contain duplicate workflow IDs")
        if in_workflow_code() is not None:
            raise DBOSException(
                "wait_first is not durable in workflow code yet: its choice would differ "
                "on replay. Await each handle's get_result() instead"
            )
        management = self.runtime.process.store.management
        while (first := management.first_finished(list(workflow_ids))) is None:
            time.sleep(polling_interval_sec)
        return first

    async def wait_first_async(
        self, workflow_ids: Sequence[str], polling_interval_sec: float
    ) -> str:
        return await asyncio.to_thread(self.wait_first, workflow_ids, polling_interval_sec)

    # -- managing ---------------------------------------------------------------------

    def with_descendants(self, workflow_ids: list[str], include: bool) -> list[str]:
        """The ids, then (``include``) every workflow they started, recursively."""
        if not include:
            return list(workflow_ids)
        found = self.runtime.process.store.management.descendants(list(workflow_ids))
        return [*workflow_ids, *(d for d in found if d not in workflow_ids)]

    def delete_workflows(self, workflow_ids: list[str], delete_children: bool) -> None:
        """Deletes the workflows (and with ``delete_children`` every workflow they
        started) with everything recorded for them. Ids that do not exist are skipped."""
        doomed = self.with_descendants(workflow_ids, delete_children)
        self.runtime.process.store.management.delete_workflows(doomed)

    def cancel_workflows(self, workflow_ids: list[str], cancel_children: bool) -> None:
        """Cancels each workflow (and with ``cancel_children`` every workflow they
        started, recursively).

        Raises:
            DBOSNonExistentWorkflowError: one of ``workflow_ids`` does not exist.
        """
        for workflow_id in self.with_descendants(workflow_ids, cancel_children):
            self.runtime.operator.cancel(workflow_id)

    def resume_workflows(
        self, workflow_ids: list[str], queue_name: str | None
    ) -> list[WorkflowHandle[Any]]:
        """Resumes each (``WorkflowService.resume``), on ``queue_name`` if given.

        Raises:
            DBOSNonExistentWorkflowError: any id does not exist (checked before any
                is resumed, as DBOS does).
        """
        workflows = self.runtime.process.store.workflows
        missing = [w for w in workflow_ids if workflows.get_outcome(w) is None]
        if missing:
            raise DBOSNonExistentWorkflowError(", ".join(missing))
        for workflow_id in workflow_ids:
            self.runtime.operator.resume(workflow_id, queue_name=queue_name)
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

    # -- application versions ----------------------------------------------------------

    def register_version(self) -> None:
        """Records this process's application version (``DBOS.launch``, a worker's start)."""
        process = self.runtime.process
        process.store.management.register_version(process.application_version)

    def list_application_versions(self) -> list[VersionInfo]:
        """Every recorded application version, the latest first."""
        return self.runtime.process.store.management.list_versions()

    def get_latest_application_version(self) -> VersionInfo:
        """The latest application version (the newest timestamp).

        Raises:
            DBOSException: none is recorded yet (as DBOS).
        """
        versions = self.list_application_versions()
        if not versions:
            raise DBOSException("No application versions found")
        return versions[0]

    def set_latest_application_version(
        self, version_name: str, application_name: str | None
    ) -> None:
        """Makes a recorded version the latest (its timestamp becomes now).

        Raises:
            DBOSException: ``application_name`` given (no applications share a system
                database here: omit it).
        """
        if application_name is not None:
            raise DBOSException(
                "application_name: no applications share a celery_durable system "
                "database, so versions have no owner; omit application_name"
            )
        self.runtime.process.store.management.promote_version(version_name)

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


async def asyncio_wait(
    fs: list[Awaitable[Any]], timeout: float | None, return_when: str
) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
    """``asyncio.wait`` over these awaitables, outside workflow code (DBOS's
    ``asyncio_wait``).

    Raises:
        DBOSException: in workflow code, where which ones finished would not be
            recorded (await them one by one there).
    """
    if in_workflow_code() is not None:
        raise DBOSException(
            "asyncio_wait is not durable in workflow code yet: which tasks finished would "
            "differ on replay. Await the tasks one by one instead"
        )
    tasks = [asyncio.ensure_future(f) for f in fs]
    return await asyncio.wait(tasks, timeout=timeout, return_when=return_when)
