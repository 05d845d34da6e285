"""DBOSClient: enqueue and operate workflows by name, without their code.

A producer (a web app, a script) needs only the system database and the broker: it
writes the workflow's row and publishes its Celery message by task name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn, NotRequired, TypedDict, Unpack

from celery import Celery

from celery_durable.api import inspection
from celery_durable.api.handle import WorkflowHandle
from celery_durable.api.inspection import WorkflowFilters
from celery_durable.api.options import check_version, validate_identity
from celery_durable.api.overview import Overview
from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import SerializerName
from celery_durable.engine import events, messaging, streams
from celery_durable.engine.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, Registry, WorkflowSpec
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration.enqueue import EnqueueSettings
from celery_durable.integration.runtime import Runtime
from celery_durable.store import WorkerVersion


class EnqueueOptions(TypedDict):
    """Options of [DBOSClient.enqueue][celery_durable.DBOSClient.enqueue], as in DBOS.

    Keys:
        workflow_name: The workflow's registered name (its Celery task name).
        queue_name: The Celery queue (default: Celery's routing for the name).
        workflow_id: Makes the enqueue idempotent (default: a new UUID).
        deduplication_id: At most one ENQUEUED or PENDING workflow of the queue has it.
        priority: Lower runs first, on queues with ``priority_enabled``.
        max_recovery_attempts: Used until a worker's code declares its own.
        allow_unregistered: Enqueue a name no worker has registered yet (ahead of a
            deployment); it waits ENQUEUED until a worker that knows it starts.
        workflow_timeout: Seconds; the workflow is CANCELLED once its deadline passes
            (fixed when its queue first admits it).
        delay_seconds: DELAYED that long before it is ENQUEUED.
        authenticated_user: The user it runs as (``DBOS.authenticated_user``).
        authenticated_roles: The roles granted to that user (a list of strings).
    """

    workflow_name: str
    queue_name: NotRequired[str]
    workflow_id: NotRequired[str]
    deduplication_id: NotRequired[str]
    priority: NotRequired[int]
    max_recovery_attempts: NotRequired[int]
    allow_unregistered: NotRequired[bool]
    workflow_timeout: NotRequired[float]
    delay_seconds: NotRequired[float]
    authenticated_user: NotRequired[str]
    authenticated_roles: NotRequired[list[str]]
    app_version: NotRequired[str]


def _settings(options: EnqueueOptions) -> EnqueueSettings:
    """The row's options from the client's, validated as ``SetEnqueueOptions`` and
    ``SetWorkflowTimeout`` validate theirs."""
    settings = EnqueueSettings(
        deduplication_id=options.get("deduplication_id"), priority=options.get("priority")
    )
    delay = options.get("delay_seconds")
    if delay is not None:
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise DBOSException(f"delay_seconds must be a number >= 0, not {delay!r}")
        settings["delay_seconds"] = delay
    if "workflow_timeout" in options:
        timeout = options["workflow_timeout"]
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise DBOSException(f"Invalid workflow timeout {timeout!r}. Timeouts must be positive.")
        settings["workflow_timeout_seconds"] = timeout
    if "authenticated_user" in options or "authenticated_roles" in options:
        user, roles = validate_identity(
            options.get("authenticated_user"), options.get("authenticated_roles")
        )
        settings["authenticated_user"] = user
        settings["authenticated_roles"] = roles
    check_version(options.get("app_version"))
    settings["app_version"] = options.get("app_version")
    return settings


def _code_elsewhere(*args: Any, **kwargs: Any) -> NoReturn:
    raise DBOSException("DBOSClient cannot run workflows: workers run them")


class DBOSClient:
    """Enqueues and operates workflows from a process that does not import them.

    Args:
        system_database_url: The workers' system database.
        broker_url: The workers' broker (or pass ``celery``, to reuse its routing).
        celery: A Celery app to publish with, instead of one built from ``broker_url``.
        serializer: Must match the workers' (``"json"`` by default).
    """

    def __init__(
        self,
        system_database_url: str,
        broker_url: str | None = None,
        *,
        celery: Celery | None = None,
        serializer: SerializerName = "json",
    ) -> None:
        if celery is None and not broker_url:
            raise DBOSException("DBOSClient needs a broker_url (or a celery app)")
        self._runtime = Runtime(
            celery=celery or Celery("celery_durable_client", broker=broker_url),
            config={
                "name": "celery_durable_client",
                "system_database_url": system_database_url,
                "serializer": serializer,
                "sys_db_pool_size": 2,
            },
            registry=Registry(),
            queues={},
        )

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Starts workflow ``options["workflow_name"]`` with these arguments.

        Idempotent on ``workflow_id``: a second enqueue returns the first's handle.

        Raises:
            DBOSWorkflowFunctionNotFoundError: no worker has registered the name (and
                ``allow_unregistered`` is not set).
            DBOSQueueDeduplicatedError: the deduplication id is taken in the queue.
        """
        name = options.get("workflow_name")
        if not isinstance(name, str) or not name:
            raise DBOSException('enqueue options need "workflow_name" (a non-empty string)')
        spec = WorkflowSpec(
            name=name,
            function=_code_elsewhere,
            is_async=False,
            max_recovery_attempts=options.get(
                "max_recovery_attempts", DEFAULT_MAX_RECOVERY_ATTEMPTS
            ),
        )
        queue = options.get("queue_name")
        row = self._runtime.starter.new_row(
            spec,
            args,
            kwargs,
            status="ENQUEUED",
            queue_name=queue,
            workflow_id=options.get("workflow_id"),
            options=_settings(options),
            require_registered=not options.get("allow_unregistered", False),
        )
        return self._handle(self._runtime.starter.enqueue(row))

    def _handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        return WorkflowHandle(
            workflow_id, self._runtime.process.store, self._runtime.process.serializer
        )

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        if self._runtime.process.store.workflows.get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return self._handle(workflow_id)

    def cancel_workflow(self, workflow_id: str) -> None:
        """As ``DBOS.cancel_workflow``."""
        self._runtime.operator.cancel(workflow_id)

    def resume_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """As ``DBOS.resume_workflow``."""
        self._runtime.operator.resume(workflow_id)
        return self._handle(workflow_id)

    def fork_workflow(
        self, workflow_id: str, start_step: int, *, application_version: str | None = None
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.fork_workflow`` (operations are numbered from 1)."""
        return self._handle(
            self._runtime.operator.fork(workflow_id, start_step, application_version)
        )

    def unregistered_note(self, status: WorkflowStatus) -> str | None:
        """Why a runnable workflow waits when no worker has registered its name (its
        messages are refused as unregistered tasks), or None."""
        return inspection.unregistered_note(self._runtime.process.store, status)

    def list_worker_versions(self) -> list[WorkerVersion]:
        """The workers that recorded which application version they run, newest first
        (each worker's sweep records it; a warm shutdown deletes it)."""
        return self._runtime.process.store.workers.list_worker_versions()

    def list_workflows(self, **filters: Unpack[WorkflowFilters]) -> list[WorkflowStatus]:
        """As ``DBOS.list_workflows``."""
        return inspection.list_workflows(
            self._runtime.process.store, self._runtime.process.serializer, **filters
        )

    def list_workflow_steps(self, workflow_id: str) -> list[dict[str, Any]]:
        return inspection.list_workflow_steps(
            self._runtime.process.store, self._runtime.process.serializer, workflow_id
        )

    def overview(self) -> Overview:
        """Read-only overviews for dashboards: pages of workflows with their counts per
        status, queue depths, a workflow's messages and stream keys."""
        return Overview(self._runtime.process.store, self._runtime.process.serializer)

    # -- messages, events, streams (as DBOS's DBOSClient) -------------------------------

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """As ``DBOS.send`` (outside a workflow): ``idempotency_key`` makes a repeated
        send deliver once."""
        runtime = self._runtime
        messaging.send(
            runtime.process.store,
            runtime.process.serializer,
            runtime.starter.publish,
            destination_id,
            message,
            topic,
            idempotency_key,
        )

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        await asyncio.to_thread(self.send, destination_id, message, topic, idempotency_key)

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """As ``DBOS.get_event``: waits up to ``timeout_seconds`` (then None)."""
        runtime = self._runtime
        return events.get_event(
            runtime.process.store, runtime.process.serializer, workflow_id, key, timeout_seconds
        )

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        return await asyncio.to_thread(self.get_event, workflow_id, key, timeout_seconds)

    def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        """As ``DBOS.get_all_events``."""
        return events.get_all_events(
            self._runtime.process.store, self._runtime.process.serializer, workflow_id
        )

    async def get_all_events_async(self, workflow_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.get_all_events, workflow_id)

    def read_stream(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """As ``DBOS.read_stream``."""
        return streams.read_stream(
            self._runtime.process.store,
            self._runtime.process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )

    def read_stream_async(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        return streams.read_stream_async(
            self._runtime.process.store,
            self._runtime.process.serializer,
            workflow_id,
            key,
            offset=offset,
            timeout_seconds=timeout_seconds,
        )

    def destroy(self) -> None:
        """Closes the client's database connections."""
        self._runtime.process.dispose()
