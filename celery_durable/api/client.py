"""DBOSClient: enqueue and operate workflows by name, without their code.

A producer (a web app, a script) needs only the system database and the broker: it
writes the workflow's row and publishes its Celery message by task name.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy import Engine

from celery_durable.api.client_database import ClientDatabase
from celery_durable.api.client_listing import ClientListing
from celery_durable.api.client_management import ClientManagementCalls
from celery_durable.api.client_messages import ClientMessaging
from celery_durable.api.client_queues import ClientQueues
from celery_durable.api.client_schedules import ClientSchedules
from celery_durable.api.client_versions import ClientVersions
from celery_durable.api.client_waiting import ClientWaiting
from celery_durable.api.enqueue_options import EnqueueOptions, enqueue_request
from celery_durable.core.records import StepInfo, WorkflowStatus
from celery_durable.core.serialization import SerializerChoice
from celery_durable.service.client_setup import ClientParameters, configured_client_service
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_partition_key, refuse_shard_key
from celery_durable.service.outside_workflow import outside_workflow_code
from celery_durable.service.overview import Overview
from celery_durable.service.types import WorkerVersion


@outside_workflow_code  # as DBOS's: it knows nothing of a workflow that calls it
class DBOSClient(
    ClientMessaging,
    ClientQueues,
    ClientListing,
    ClientWaiting,
    ClientManagementCalls,
    ClientVersions,
    ClientSchedules,
    ClientDatabase,
):
    """Enqueues and operates workflows from a process that does not import them.

    Args:
        system_database_url: The workers' system database.
        broker_url: The workers' broker (or pass ``celery``, to reuse its routing).
            With neither, the client needs no broker: it commits each workflow in
            PostgreSQL and a worker publishes it (told by LISTEN/NOTIFY, with the
            recovery sweep as the fallback).
        celery: A Celery app to publish with, instead of one built from ``broker_url``.
        serializer: Must match the workers' (``"json"`` by default, ``"pickle"``, or
            a ``dbos.Serializer`` instance).

    DBOS 3.4's other keyword parameters (``system_database_engine``, ``lazy``,
    ``system_database_pool_size``, ...) are accepted as
    :mod:`celery_durable.service.client_setup` describes: honoured, or refused naming
    what to use instead. Unless ``lazy``, the client connects at once (and raises if
    it cannot).
    """

    def __init__(
        self,
        system_database_url: str | None = None,
        broker_url: str | None = None,
        *,
        celery: Celery | None = None,
        serializer: SerializerChoice = "json",
        system_database_engine: Engine | None = None,
        dbos_system_schema: str | None = "dbos",
        system_database_pool_size: int | None = None,
        system_database_polling_concurrency: int | None = None,
        use_listen_notify: bool = False,
        application_name: str | None = None,
        lazy: bool = False,
        retry_connection_errors: bool = True,
        observability_query_timeout_sec: float | None = None,
        sys_db_idle_transaction_timeout_sec: float | None = None,
        sharding: bool = False,
    ) -> None:
        if celery is None and broker_url:
            celery = Celery("celery_durable_client", broker=broker_url)
        parameters = {
            name: value
            for name, value in locals().items()
            if name in ClientParameters.__dataclass_fields__
        }
        self._service = configured_client_service(
            system_database_url, celery, serializer, ClientParameters(**parameters)
        )

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Starts workflow ``options["workflow_name"]`` with these arguments.

        Idempotent on ``workflow_id``: a second enqueue returns the first's handle
        (unless ``workflow_id_reuse_policy="reject"``).

        Raises:
            DBOSWorkflowFunctionNotFoundError: workers have registered their
                workflows, none of them this name, and ``allow_unregistered`` is not
                set. (Before any worker has, the workflow waits ENQUEUED for the first
                worker serving it, as in DBOS.)
            DBOSQueueDeduplicatedError: the deduplication id is taken in the queue
                (unless ``duplication_policy="return-existing"``).
            DBOSWorkflowIDInUseError: ``workflow_id_reuse_policy="reject"`` and the id
                is in use.
        """
        return self._service.enqueue_request(enqueue_request(options), args, kwargs)

    async def enqueue_async(
        self, options: EnqueueOptions, *args: Any, **kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        """``enqueue`` for async callers."""
        return await self._service.enqueue_request_async(enqueue_request(options), args, kwargs)

    def retrieve_workflow(
        self, workflow_id: str, *, shard_key: str | None = None
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.retrieve_workflow`` (the workflow must exist, as in DBOS's client).

        Raises:
            DBOSNonExistentWorkflowError: no such workflow.
        """
        refuse_shard_key(shard_key)
        return self._service.retrieve(workflow_id)

    def cancel_workflow(
        self, workflow_id: str, *, cancel_children: bool = False, shard_key: str | None = None
    ) -> None:
        """As ``DBOS.cancel_workflow``."""
        refuse_shard_key(shard_key)
        self._service.management.cancel_workflows([workflow_id], cancel_children)

    def resume_workflow(
        self, workflow_id: str, *, queue_name: str | None = None, shard_key: str | None = None
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.resume_workflow``."""
        refuse_shard_key(shard_key)
        return self._service.resume(workflow_id, queue_name=queue_name)

    def resume_failed_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """celery_durable's own: runs a workflow that ended in ERROR again from its
        checkpoints, which ``resume_workflow`` leaves alone (as DBOS 3.4 does): its
        recorded steps replay as they ended, so it fails again unless the workflow's own
        code changed. ``celery-durable workflows resume --force`` and the dashboard's
        confirmed resume use it; to re-run a failed step, fork from it."""
        return self._service.resume(workflow_id, include_failed=True)

    def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandle[Any]:
        """As ``DBOS.fork_workflow`` (operations are numbered from 1)."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return self._service.fork(
            workflow_id,
            start_step,
            application_version=application_version,
            queue_name=queue_name,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )

    def unregistered_note(self, status: WorkflowStatus) -> str | None:
        """Why a runnable workflow waits when no worker has registered its name (its
        messages are refused as unregistered tasks), or None."""
        return self._service.unregistered_note(status)

    def list_worker_versions(self) -> list[WorkerVersion]:
        """The workers that recorded which application version they run, newest first
        (each worker's sweep records it; a warm shutdown deletes it)."""
        return self._service.list_worker_versions()

    def list_workflow_steps(
        self,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
        shard_key: str | None = None,
    ) -> list[StepInfo]:
        """As ``DBOS.list_workflow_steps``."""
        refuse_shard_key(shard_key)
        return self._service.reading.list_workflow_steps(
            workflow_id, load_output=load_output, limit=limit, offset=offset
        )

    def overview(self) -> Overview:
        """Read-only overviews for dashboards: pages of workflows with their counts per
        status, queue depths, a workflow's messages and stream keys."""
        return self._service.overview()

    def destroy(self) -> None:
        """Closes the client's database connections."""
        self._service.release()
