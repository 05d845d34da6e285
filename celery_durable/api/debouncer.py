"""DBOS 3.4's ``Debouncer`` and ``DebouncerClient``: start a workflow once a burst of
calls has been quiet for a while, with the last call's arguments (see
:mod:`celery_durable.service.debouncing` and docs/queues.md)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from celery_durable.api.dbos import DBOS
from celery_durable.api.enqueue_options import EnqueueOptions, enqueue_request
from celery_durable.api.queues import Queue
from celery_durable.error import DBOSException
from celery_durable.service import debouncing
from celery_durable.service.context import enqueue_options, next_workflow_id, next_workflow_id_reuse
from celery_durable.service.decorators import spec_of
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync

if TYPE_CHECKING:
    from celery_durable.api.client import DBOSClient

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


def _queue_name(queue: Queue | str | None) -> str | None:
    return queue.name if isinstance(queue, Queue) else queue


def _refuse_application_name(application_name: str | None) -> None:
    if application_name is not None:
        raise DBOSException(
            "application_name is not supported by celery_durable's debouncers: one "
            "system database serves one application; debounce from that application"
        )


class Debouncer(Generic[P, R]):
    """Debounces one workflow: ``Debouncer.create(workflow)``, then
    ``debounce(key, period_sec, *args)`` for each call of a burst.

    Args:
        workflow_name: The registered workflow's name.
        debounce_timeout_sec: The longest a burst may hold the workflow back, from its
            first call (None: no limit).
        queue: The queue (or its name) it runs on; None: its default queue.
        application_name: Only None (one application per system database here).
    """

    def __init__(
        self,
        workflow_name: str,
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> None:
        debouncing.check_timeout(debounce_timeout_sec)
        _refuse_application_name(application_name)
        self.func_name = workflow_name
        self.debounce_timeout_sec = debounce_timeout_sec
        self.queue_name = _queue_name(queue)

    @staticmethod
    def create(
        workflow: Callable[P, R],
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> Debouncer[P, R]:
        """A debouncer of this ``@DBOS.workflow()`` function.

        Raises:
            TypeError: a bound method (only workflow functions may be debounced).
        """
        if isinstance(workflow, types.MethodType):
            raise TypeError("Only workflow functions may be debounced, not methods")
        return Debouncer[P, R](
            spec_of(workflow).name,
            debounce_timeout_sec=debounce_timeout_sec,
            queue=queue,
            application_name=application_name,
        )

    @staticmethod
    def create_async(
        workflow: Callable[P, Coroutine[Any, Any, R]],
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> Debouncer[P, R]:
        """``create`` for an ``async def`` workflow."""
        if isinstance(workflow, types.MethodType):
            raise TypeError("Only workflow functions may be debounced, not methods")
        return Debouncer[P, R](
            spec_of(workflow).name,
            debounce_timeout_sec=debounce_timeout_sec,
            queue=queue,
            application_name=application_name,
        )

    def debounce(
        self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]:
        """Starts the workflow ``debounce_period_sec`` from now with these arguments,
        or, while the key's workflow waits, moves its start there (never past the
        timeout) and gives it these arguments instead. ``SetWorkflowID`` names a new
        workflow; ``SetWorkflowTimeout`` and ``SetEnqueueOptions(app_version=)`` apply.

        Raises:
            DBOSException: ``SetEnqueueOptions`` with a deduplication id, delay,
                priority or partition key (the debounce owns them), or an unknown name.
            DBOSQueueDeduplicatedError: the key is held by another kind of workflow.
        """
        pinned = next_workflow_id.get()
        reuse = next_workflow_id_reuse.get()
        next_workflow_id.set(None)  # consumed, even when the debounce moves a workflow
        next_workflow_id_reuse.set(None)
        ambient = dict(enqueue_options.get() or {})
        debouncing.refuse_conflicting_options(ambient, reject_reuse=reuse == "reject")
        spec = DBOS._registry.get(self.func_name)
        if spec is None:
            raise DBOSException(f"Invalid workflow name provided to debouncer: {self.func_name}")
        service = DBOS._service()
        if self.queue_name is not None and self.queue_name not in DBOS._queues:
            service.queues.required(self.queue_name)  # registered at run time
        workflow_id = debouncing.debounce(
            service,
            spec,
            key=debounce_key,
            period_seconds=debounce_period_sec,
            timeout_seconds=self.debounce_timeout_sec,
            queue_name=self.queue_name,
            workflow_id=pinned,
            settings=cast(Any, {k: v for k, v in ambient.items() if v is not None}),
            args=tuple(args),
            kwargs=dict(kwargs),
        )
        return cast(WorkflowHandle[R], service.handle(workflow_id))

    async def debounce_async(
        self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        """``debounce`` for async callers (the database work runs in a thread)."""
        handle = await asyncio.to_thread(
            self.debounce, debounce_key, debounce_period_sec, *args, **kwargs
        )
        return cast(WorkflowHandleAsync[R], DBOS._service().handle_async(handle.workflow_id))


class DebouncerClient:
    """``Debouncer`` for a ``DBOSClient``: the workflow is named by
    ``workflow_options`` (an ``EnqueueOptions``), whose ``workflow_id`` names each new
    workflow and whose ``queue_name`` it runs on unless ``queue`` is given."""

    def __init__(
        self,
        client: DBOSClient,
        workflow_options: EnqueueOptions,
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> None:
        debouncing.check_timeout(debounce_timeout_sec)
        _refuse_application_name(application_name)
        self.client = client
        self.workflow_options = workflow_options
        self.debounce_timeout_sec = debounce_timeout_sec
        self.queue_name = _queue_name(queue)

    def debounce(
        self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """As ``Debouncer.debounce``, for the workflow the options name."""
        options = self.workflow_options
        debouncing.refuse_conflicting_options(
            cast(dict[str, Any], options),
            reject_reuse=options.get("workflow_id_reuse_policy") == "reject",
        )
        request = enqueue_request(options)
        service = self.client._service
        workflow_id = debouncing.debounce(
            service,
            request.spec,
            key=debounce_key,
            period_seconds=debounce_period_sec,
            timeout_seconds=self.debounce_timeout_sec,
            queue_name=self.queue_name or request.queue_name,
            workflow_id=request.workflow_id,
            settings=request.settings,
            args=tuple(args),
            kwargs=dict(kwargs),
            require_registered=request.require_registered,
        )
        return service.handle(workflow_id)

    async def debounce_async(
        self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        """``debounce`` for async callers (the database work runs in a thread)."""
        handle = await asyncio.to_thread(
            self.debounce, debounce_key, debounce_period_sec, *args, **kwargs
        )
        return self.client._service.handle_async(handle.workflow_id)
