"""The ``DBOS`` facade's queues and enqueueing, DBOS 3.x style (a part of ``DBOS``).

Names and signatures are DBOS Transact 3.4's. A queue registered here is a Celery
queue of the same name whose limits live in PostgreSQL; every worker that consumes
the default Celery queue starts consuming it too (see docs/queues.md).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from celery_durable.api.enqueue_options import EnqueueOptions, enqueue_request
from celery_durable.api.facade import ConfiguredFacade
from celery_durable.api.queue_limits import QueueRateLimit, queue_limits
from celery_durable.api.queues import Queue
from celery_durable.error import DBOSException
from celery_durable.service.event_loops import refuse_running_loop
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.types import OnConflict

P = ParamSpec("P")
R = TypeVar("R")


class WorkflowQueues(ConfiguredFacade):
    """``register_queue``, ``retrieve_queue``, ``list_queues``, ``delete_queue`` and
    ``enqueue_workflow(_with_options)`` on ``DBOS``, each with its async twin."""

    @classmethod
    def register_queue(
        cls,
        name: str,
        *,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        limiter: QueueRateLimit | None = None,
        polling_interval_sec: float = 1.0,
        on_conflict: OnConflict = "update_if_latest_version",
        concurrency: int | None = None,
    ) -> Queue:
        """Registers a queue in the system database and returns it as stored.

        Running workers that consume the default Celery queue start consuming it at
        once (a remote-control broadcast); any that missed it, at their next sweep.
        ``on_conflict`` decides what happens to an existing queue of the name:
        ``"always_update"``, ``"never_update"``, or (default)
        ``"update_if_latest_version"``: updated unless another application version
        registered it and a worker still runs that version.
        """
        refuse_running_loop("register_queue")
        limits = queue_limits(
            name,
            concurrency=concurrency,
            global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency,
            limiter=limiter,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
            polling_interval_sec=polling_interval_sec,
        )
        stored, _ = cls._service().queues.register(limits, on_conflict)
        return Queue._stored(stored)

    @classmethod
    async def register_queue_async(
        cls,
        name: str,
        *,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        limiter: QueueRateLimit | None = None,
        polling_interval_sec: float = 1.0,
        on_conflict: OnConflict = "update_if_latest_version",
        concurrency: int | None = None,
    ) -> Queue:
        """``register_queue`` for async callers."""
        limits = queue_limits(
            name,
            concurrency=concurrency,
            global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency,
            limiter=limiter,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
            polling_interval_sec=polling_interval_sec,
        )
        stored, _ = await cls._service().queues.register_async(limits, on_conflict)
        return Queue._stored(stored)

    @classmethod
    def retrieve_queue(cls, name: str) -> Queue | None:
        """The queue of this name in the system database (registered, or declared
        in a worker's code), or None."""
        refuse_running_loop("retrieve_queue")
        stored = cls._service().queues.retrieve(name)
        return None if stored is None else Queue._stored(stored)

    @classmethod
    async def retrieve_queue_async(cls, name: str) -> Queue | None:
        """``retrieve_queue`` for async callers."""
        stored = await cls._service().queues.retrieve_async(name)
        return None if stored is None else Queue._stored(stored)

    @classmethod
    def delete_queue(cls, name: str) -> None:
        """Deletes a queue's row: its limits no longer hold. Its workflows stay in the
        Celery queue; workers that consume it go on running them."""
        refuse_running_loop("delete_queue")
        cls._service().queues.delete(name)

    @classmethod
    async def delete_queue_async(cls, name: str) -> None:
        """``delete_queue`` for async callers."""
        await cls._service().queues.delete_async(name)

    @classmethod
    def list_queues(cls, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """The queues registered at run time (``register_queue``), by name, as DBOS
        lists its database-backed queues (``retrieve_queue`` also finds one declared
        in code).

        Raises:
            DBOSException: ``application_name``: queues have no owning application
                here (one system database serves one Celery app's fleet).
        """
        refuse_running_loop("list_queues")
        _no_application_name(application_name)
        stored = cls._service().queues.list_all()
        return [Queue._stored(limits) for limits in stored]

    @classmethod
    async def list_queues_async(
        cls, *, application_name: str | list[str] | None = None
    ) -> list[Queue]:
        """``list_queues`` for async callers."""
        _no_application_name(application_name)
        stored = await cls._service().queues.list_all_async()
        return [Queue._stored(limits) for limits in stored]

    # -- enqueueing -----------------------------------------------------------------------

    @classmethod
    def enqueue_workflow(
        cls, queue_name: str, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]:
        """Enqueues ``func`` on queue ``queue_name`` (as ``Queue.enqueue``)."""
        return cls._service().start(func, args, kwargs, queue=queue_name)

    @classmethod
    async def enqueue_workflow_async(
        cls,
        queue_name: str,
        func: Callable[P, Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandleAsync[R]:
        """``enqueue_workflow`` for async callers."""
        return await cls._service().start_async(func, args, kwargs, queue=queue_name)

    @classmethod
    def enqueue_workflow_with_options(
        cls, options: EnqueueOptions, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Enqueues workflow ``options["workflow_name"]`` on ``options["queue_name"]``
        by name, without its function (the same options as ``DBOSClient.enqueue``);
        in workflow code, the enqueued workflow is a child of the running one.

        As in DBOS, the name is not checked against registered workflows (another
        process may implement it), and ``SetWorkflowID`` / ``SetEnqueueOptions`` fill
        what the options leave unset."""
        request = enqueue_request(options, from_application=True)
        return cls._service().enqueue_request(request, args, kwargs)

    @classmethod
    async def enqueue_workflow_with_options_async(
        cls, options: EnqueueOptions, *args: Any, **kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        """``enqueue_workflow_with_options`` for async callers."""
        request = enqueue_request(options, from_application=True)
        return await cls._service().enqueue_request_async(request, args, kwargs)


def _no_application_name(application_name: str | list[str] | None) -> None:
    if application_name is not None:
        raise DBOSException(
            "list_queues(application_name=...) is not supported: queues have no owning "
            "application here; list_queues() lists every queue of the system database"
        )
