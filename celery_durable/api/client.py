"""DBOSClient: enqueue and operate workflows by name, without their code.

A producer (a web app, a script) needs only the system database and the broker: it
writes the workflow's row and publishes its Celery message by task name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn, NotRequired, TypedDict, Unpack

from celery import Celery

from celery_durable.api.options import check_version, validate_identity
from celery_durable.core.records import WorkflowStatus
from celery_durable.core.serialization import SerializerName
from celery_durable.error import DBOSException
from celery_durable.service.handles import WorkflowHandle
from celery_durable.service.inspection import WorkflowFilters
from celery_durable.service.overview import Overview
from celery_durable.service.types import (
    DEFAULT_MAX_RECOVERY_ATTEMPTS,
    EnqueueSettings,
    WorkerVersion,
    WorkflowSpec,
)
from celery_durable.service.wiring import client_service


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
            With neither, the client needs no broker: it commits each workflow in
            PostgreSQL and a worker publishes it (told by LISTEN/NOTIFY, with the
            recovery sweep as the fallback).
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
        if celery is None and broker_url:
            celery = Celery("celery_durable_client", broker=broker_url)
        self._service = client_service(system_database_url, celery, serializer)

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Starts workflow ``options["workflow_name"]`` with these arguments.

        Idempotent on ``workflow_id``: a second enqueue returns the first's handle.

        Raises:
            DBOSWorkflowFunctionNotFoundError: no worker has registered the name (and
                ``allow_unregistered`` is not set).
            DBOSQueueDeduplicatedError: the deduplication id is taken in the queue.
        """
        return self._service.enqueue_by_name(
            _named_spec(options),
            args,
            kwargs,
            queue_name=options.get("queue_name"),
            workflow_id=options.get("workflow_id"),
            settings=_settings(options),
            require_registered=not options.get("allow_unregistered", False),
        )

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """As ``DBOS.retrieve_workflow`` (the workflow must exist, as in DBOS's client).

        Raises:
            DBOSNonExistentWorkflowError: no such workflow.
        """
        return self._service.retrieve(workflow_id)

    def cancel_workflow(self, workflow_id: str) -> None:
        """As ``DBOS.cancel_workflow``."""
        self._service.cancel(workflow_id)

    def resume_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """As ``DBOS.resume_workflow``."""
        return self._service.resume(workflow_id)

    def fork_workflow(
        self, workflow_id: str, start_step: int, *, application_version: str | None = None
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.fork_workflow`` (operations are numbered from 1)."""
        return self._service.fork(workflow_id, start_step, application_version=application_version)

    def unregistered_note(self, status: WorkflowStatus) -> str | None:
        """Why a runnable workflow waits when no worker has registered its name (its
        messages are refused as unregistered tasks), or None."""
        return self._service.unregistered_note(status)

    def list_worker_versions(self) -> list[WorkerVersion]:
        """The workers that recorded which application version they run, newest first
        (each worker's sweep records it; a warm shutdown deletes it)."""
        return self._service.list_worker_versions()

    def list_workflows(self, **filters: Unpack[WorkflowFilters]) -> list[WorkflowStatus]:
        """As ``DBOS.list_workflows``."""
        return self._service.list_workflows(**filters)

    def list_workflow_steps(self, workflow_id: str) -> list[dict[str, Any]]:
        """As ``DBOS.list_workflow_steps``."""
        return self._service.list_workflow_steps(workflow_id)

    def overview(self) -> Overview:
        """Read-only overviews for dashboards: pages of workflows with their counts per
        status, queue depths, a workflow's messages and stream keys."""
        return self._service.overview()

    # -- messages, events, streams (as DBOS's DBOSClient) -------------------------------

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """As ``DBOS.send`` (outside a workflow): ``idempotency_key`` makes a repeated
        send deliver once (positional here, keyword-only on ``DBOS``, as in DBOS)."""
        self._service.send(destination_id, message, topic, idempotency_key)

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """``send`` for async callers."""
        await self._service.send_async(destination_id, message, topic, idempotency_key)

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """As ``DBOS.get_event``: waits up to ``timeout_seconds`` (then None)."""
        return self._service.get_event(workflow_id, key, timeout_seconds)

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """``get_event`` for async callers."""
        return await self._service.get_event_async(workflow_id, key, timeout_seconds)

    def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        """As ``DBOS.get_all_events``."""
        return self._service.get_all_events(workflow_id)

    async def get_all_events_async(self, workflow_id: str) -> dict[str, Any]:
        """``get_all_events`` for async callers."""
        return await self._service.get_all_events_async(workflow_id)

    def read_stream(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """As ``DBOS.read_stream``."""
        return self._service.read_stream(
            workflow_id, key, offset=offset, timeout_seconds=timeout_seconds
        )

    def read_stream_async(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        """``read_stream`` for async callers (an async iterator)."""
        return self._service.read_stream_async(
            workflow_id, key, offset=offset, timeout_seconds=timeout_seconds
        )

    def destroy(self) -> None:
        """Closes the client's database connections."""
        self._service.release()


def _named_spec(options: EnqueueOptions) -> WorkflowSpec:
    """The workflow the options name; its code runs only on the workers."""
    name = options.get("workflow_name")
    if not isinstance(name, str) or not name:
        raise DBOSException('enqueue options need "workflow_name" (a non-empty string)')
    return WorkflowSpec(
        name=name,
        function=_code_elsewhere,
        is_async=False,
        max_recovery_attempts=options.get("max_recovery_attempts", DEFAULT_MAX_RECOVERY_ATTEMPTS),
    )
