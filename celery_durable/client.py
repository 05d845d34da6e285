"""DBOSClient: enqueue and inspect workflows by name, without their code.

A producer (a web app, a script) needs only the system database and the broker: it
writes the workflow's row and publishes its Celery message by task name.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NotRequired, TypedDict

from celery import Celery

from celery_durable import inspection
from celery_durable.celery_tasks import resolve_queue
from celery_durable.enqueue import insert_workflow, publish_new_workflow
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.handle import WorkflowHandle
from celery_durable.records import WorkflowStatus
from celery_durable.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS
from celery_durable.serialization import SerializerName, make_serializer
from celery_durable.store import SystemStore


class EnqueueOptions(TypedDict):
    """Options of :meth:`DBOSClient.enqueue`, as in DBOS.

    Keys:
        workflow_name: The workflow's registered name (its Celery task name).
        queue_name: The Celery queue (default: Celery's routing for the name).
        workflow_id: Makes the enqueue idempotent (default: a new UUID).
        priority: The message's priority (broker-dependent).
        max_recovery_attempts: As ``@DBOS.workflow(max_recovery_attempts=...)``.
    """

    workflow_name: str
    queue_name: NotRequired[str]
    workflow_id: NotRequired[str]
    priority: NotRequired[int]
    max_recovery_attempts: NotRequired[int]


class DBOSClient:
    """Enqueues and inspects workflows from a process that does not import them.

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
        self.celery = celery or Celery("celery_durable_client", broker=broker_url)
        self.serializer = make_serializer(serializer)
        self.store = SystemStore(system_database_url, pool_size=2)
        self._migrated = False

    def _ready_store(self) -> SystemStore:
        if not self._migrated:
            self.store.migrate()
            self._migrated = True
        return self.store

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Starts workflow ``options["workflow_name"]`` with these arguments.

        Idempotent on ``workflow_id``: a second enqueue returns the first's handle.
        """
        name = options.get("workflow_name")
        if not isinstance(name, str) or not name:
            raise DBOSException('enqueue options need "workflow_name" (a non-empty string)')
        workflow_id = options.get("workflow_id") or str(uuid.uuid4())
        queue = options.get("queue_name") or resolve_queue(self.celery, name)
        row = insert_workflow(
            self._ready_store(),
            self.serializer,
            workflow_id=workflow_id,
            name=name,
            args=args,
            kwargs=kwargs,
            status="ENQUEUED",
            queue_name=queue,
            max_recovery_attempts=options.get(
                "max_recovery_attempts", DEFAULT_MAX_RECOVERY_ATTEMPTS
            ),
        )
        if row.inserted:
            publish_new_workflow(
                self.celery, name, workflow_id, queue=queue, priority=options.get("priority")
            )
        return WorkflowHandle(workflow_id, self.store, self.serializer)

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        if self._ready_store().get_outcome(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return WorkflowHandle(workflow_id, self.store, self.serializer)

    def list_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | dt.datetime | None = None,
        end_time: str | dt.datetime | None = None,
        name: str | None = None,
        queue_name: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
    ) -> list[WorkflowStatus]:
        return inspection.list_workflows(
            self._ready_store(),
            self.serializer,
            workflow_ids=workflow_ids,
            status=status,
            start_time=start_time,
            end_time=end_time,
            name=name,
            queue_name=queue_name,
            limit=limit,
            offset=offset,
            sort_desc=sort_desc,
        )

    def list_workflow_steps(self, workflow_id: str) -> list[dict[str, Any]]:
        return inspection.list_workflow_steps(self._ready_store(), self.serializer, workflow_id)

    def destroy(self) -> None:
        """Closes the client's database connections."""
        self.store.dispose()
