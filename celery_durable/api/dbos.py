"""The ``DBOS`` facade: decorators, starting workflows, and operating them.

Decorators run at import time, before (or after) ``DBOS(celery=..., config=...)`` is
constructed, so they register into process-wide registries held here, and the single
``DBOS`` instance wires them into its Celery app. Every operation is delegated to the
configured :class:`~celery_durable.service.WorkflowService` (``DBOSClient`` delegates to
the same operations), or, for what only workflow code does, to
:mod:`celery_durable.service.workflow_code`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Literal, ParamSpec, TypeVar, cast

from celery import Celery

from celery_durable.api.ambient import make_logger
from celery_durable.api.dbos_classes import WorkflowClasses
from celery_durable.api.dbos_inspection import WorkflowInspection
from celery_durable.api.dbos_listing import WorkflowListing
from celery_durable.api.dbos_management import WorkflowManagementCalls
from celery_durable.api.dbos_messages import WorkflowMessaging
from celery_durable.api.dbos_process import ProcessProperties, WorkflowProcess
from celery_durable.api.dbos_queues import WorkflowQueues
from celery_durable.api.dbos_schedules import WorkflowSchedules
from celery_durable.api.dbos_steps import WorkflowSteps
from celery_durable.api.dbos_tasks import WorkflowTasks
from celery_durable.api.dbos_testing import WorkflowTesting
from celery_durable.api.dbos_versions import WorkflowVersioning
from celery_durable.api.dbos_waiting import WorkflowWaiting
from celery_durable.core.retry import RetryPolicy
from celery_durable.core.serializers import WorkflowSerializationFormat
from celery_durable.service import workflow_code
from celery_durable.service.context import StepContext
from celery_durable.service.decorators import (
    SameTypeDecorator,
    WorkflowDecorator,
    declare_required_roles,
    declare_step,
    declare_transaction,
    declare_workflow,
)
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_shard_key
from celery_durable.service.types import DBOSConfig, Redispatch
from celery_durable.service.validation import ValidateArgs
from celery_durable.service.wiring import connect_workers, dbos_service, described

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
P = ParamSpec("P")
R = TypeVar("R")


class DBOS(
    WorkflowMessaging,
    WorkflowSchedules,
    WorkflowVersioning,
    WorkflowClasses,
    WorkflowQueues,
    WorkflowTasks,
    WorkflowListing,
    WorkflowManagementCalls,
    WorkflowWaiting,
    WorkflowTesting,
    WorkflowInspection,
    WorkflowSteps,
    WorkflowProcess,
    metaclass=ProcessProperties,
):
    """Durable workflows on a Celery app.

    Args:
        config: See [DBOSConfig][celery_durable.DBOSConfig].
        conductor_url: Accepted for DBOS programs; warns (no Conductor here).
        conductor_key: Likewise.
        celery: The Celery app whose workers run the workflows. Without it, DBOS builds
            one (``config["broker_url"]``, else ``CELERY_BROKER_URL``, else an embedded
            redis-server) and ``launch()`` runs a worker in this process.
    """

    logger: ClassVar[logging.Logger] = make_logger()

    def __init__(
        self,
        *,
        config: DBOSConfig,
        conductor_url: str | None = None,
        conductor_key: str | None = None,
        celery: Celery | None = None,
    ) -> None:
        if conductor_url is not None or conductor_key is not None:
            config = {**config, "conductor_url": conductor_url, "conductor_key": conductor_key}
        self.service = dbos_service(
            celery=celery,
            config=config,
            registry=DBOS._registry,
            queues=DBOS._queues,
            scheduled=DBOS._scheduled_workflows,
        )
        DBOS._install(self.service)
        connect_workers(self.service, current=DBOS._current_service, require=DBOS._service)
        DBOS.logger.debug("celery_durable configured: system database %s", described(self.service))

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    def launch(cls) -> None:
        """Creates or migrates the tables, records the queues and writes the
        ``@DBOS.scheduled`` schedules. Idempotent.

        Migrations run only here, in ``celery-durable migrate`` and when a worker
        starts; reading workflows never changes the schema.
        """
        cls._service().launch()

    @classmethod
    def destroy(
        cls, *, destroy_registry: bool = False, workflow_completion_timeout_sec: int = 0
    ) -> None:
        """Stops the in-process worker (waiting up to ``workflow_completion_timeout_sec``
        for the workflows it runs, as DBOS does), closes this process's connections and
        forgets the configuration.

        Args:
            destroy_registry: Also forget the workflows, queues and schedules declared
                so far (decorated again, they register again).
        """
        service = cls._current_service()
        if service is not None:
            service.stop_worker(workflow_completion_timeout_sec)
        cls._install(None)
        if destroy_registry:
            DBOS._registry.clear()
            DBOS._queues.clear()
            DBOS._scheduled_workflows.clear()

    @classmethod
    def recover(cls) -> list[Redispatch]:
        """Runs one recovery sweep now (workers run it every ``recovery_interval_seconds``;
        while another sweep runs, this one publishes nothing).

        Returns:
            The workflows published again, each with its new generation and the reason.
        """
        return cls._service().recover()

    # -- decorators -------------------------------------------------------------------

    @staticmethod
    def workflow(
        *,
        name: str | None = None,
        max_recovery_attempts: int | None = None,
        serialization_type: WorkflowSerializationFormat | None = None,
        validate_args: ValidateArgs | None = None,
        auto_upgrade: bool | None = None,
    ) -> WorkflowDecorator:
        """Declares a durable workflow; its name is also its Celery task name.

        The function keeps its parameters and result for type checkers, and gains
        Celery's ``s``, ``si`` and ``signature`` (``WorkflowFunction``).

        Called from another workflow's code, a workflow runs as its child (id
        ``{parent_id}-{function_id}``, the call's 1-based operation number) and the
        parent waits for it without holding a worker slot.

        Args:
            name: Defaults to the function's ``__qualname__``.
            max_recovery_attempts: How often a workflow's executions may die before it
                becomes MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 100).
            serialization_type: ``PORTABLE``: its inputs, output and error are stored
                in DBOS's portable JSON, and its ``send``/``set_event``/``write_stream``
                default to it (docs/serialization.md).
            validate_args: ``(args, kwargs) -> (args, kwargs)``, run on the inputs
                before each execution; what it raises is the workflow's error.
                ``pydantic_args_validator`` validates against the type hints.
            auto_upgrade: Only None or False (not supported: raises).
        """
        return declare_workflow(
            DBOS._registry,
            DBOS._service,
            name,
            max_recovery_attempts,
            serialization_type=serialization_type,
            validate_args=validate_args,
            auto_upgrade=auto_upgrade,
        )

    @staticmethod
    def step(
        *,
        name: str | None = None,
        retries_allowed: bool = True,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: Callable[[Exception], bool] | None = None,
        preemptible: bool = False,
        timeout_seconds: float | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a step: checkpointed once it succeeds, retried with backoff.

        Attempt ``k + 1`` starts ``interval_seconds * backoff_rate ** (k - 1)`` seconds
        after attempt ``k`` fails. After ``max_attempts`` failures the workflow sees
        ``DBOSMaxStepRetriesExceeded``; with ``retries_allowed=False`` or when
        ``should_retry(error)`` is False, it sees the step's own error at once.

        For ``async def`` steps only (as in DBOS 3.4): an attempt running longer than
        ``timeout_seconds`` is cancelled and fails with ``DBOSStepTimeoutError``; a
        ``preemptible`` step is cancelled when its workflow is (nothing is recorded).
        """
        return declare_step(
            DBOS._registry,
            name,
            RetryPolicy(
                retries_allowed=retries_allowed,
                max_attempts=max_attempts,
                interval_seconds=interval_seconds,
                backoff_rate=backoff_rate,
                should_retry=should_retry,
            ),
            preemptible,
            timeout_seconds,
        )

    @staticmethod
    def required_roles(roles: list[str]) -> SameTypeDecorator:
        """Lets only callers with one of ``roles`` (``DBOSContextSetAuth``) call a
        workflow or step; others get ``DBOSNotAuthorizedError``. The role found is
        ``DBOS.assumed_role`` while it runs. Put it above ``@DBOS.workflow()``.
        """
        return declare_required_roles(DBOS._registry, roles)

    @staticmethod
    def transaction(
        *, isolation_level: IsolationLevel = "SERIALIZABLE", name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Declares a database transaction, executed exactly once per workflow call.

        Inside it, ``DBOS.sql_session`` is a SQLAlchemy ``Session`` on the application
        database. Its outcome is recorded in the same database transaction as its
        writes. Serialization failures and deadlocks are retried in-process; other
        errors are recorded and raised.

        Args:
            isolation_level: ``SERIALIZABLE`` (default, as in DBOS), ``REPEATABLE READ``
                or ``READ COMMITTED``.
            name: Defaults to the function's ``__qualname__``.
        """
        return declare_transaction(
            DBOS._registry,
            name,
            isolation_level,
            lambda: DBOS._service().application_store,
        )

    # -- starting workflows -----------------------------------------------------------

    @classmethod
    def start_workflow(
        cls,
        workflow: Callable[P, R] | Callable[P, Coroutine[Any, Any, R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandle[R]:
        """Enqueues a workflow for a Celery worker and returns its handle at once.

        Inputs are serialized and the workflow's row is committed before the Celery
        message (which carries only the workflow id) is published. Inside a
        ``SetWorkflowID`` block, a second start with the same id returns a handle to
        the first workflow and runs nothing. Inside a workflow, it starts a child.

        Raises:
            DBOSException: ``SetEnqueueOptions`` sets what only a queue acts on
                (``deduplication_id``, ``priority``, ``queue_partition_key``,
                ``delay_seconds``): use ``DBOS.enqueue_workflow`` (as DBOS 3.4).
        """
        return cast(WorkflowHandle[R], cls._service().start(workflow, args, kwargs, queue=None))

    @classmethod
    async def start_workflow_async(
        cls,
        workflow: Callable[P, Awaitable[R]] | Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> WorkflowHandleAsync[R]:
        """``start_workflow`` for async callers (the database work runs in a thread)."""
        return cast(
            WorkflowHandleAsync[R],
            await cls._service().start_async(workflow, args, kwargs, queue=None),
        )

    @staticmethod
    def sleep(seconds: float) -> None:
        """Sleeps durably: in a workflow, the worker is free until the wake-up time.

        The wake-up time is recorded once; a replay after it does not sleep again. A
        wait longer than the broker can hold is parked in PostgreSQL. Outside a
        workflow (or in a step) it is ``time.sleep``.
        """
        workflow_code.sleep(seconds)

    @staticmethod
    async def sleep_async(seconds: float) -> None:
        """``DBOS.sleep`` for ``async def`` workflows."""
        await workflow_code.sleep_async(seconds)

    # -- operating workflows ----------------------------------------------------------

    @classmethod
    def cancel_workflow(
        cls, workflow_id: str, *, cancel_children: bool = False, shard_key: str | None = None
    ) -> None:
        """Cancels a workflow: it stops at its next step boundary, and a pending retry,
        sleep or queue wait is dropped. ``get_result`` then raises
        ``DBOSAwaitedWorkflowCancelledError``. With ``cancel_children``, every workflow
        it started is cancelled too (recursively)."""
        refuse_shard_key(shard_key)
        cls._service().management.cancel_workflows([workflow_id], cancel_children)

    @classmethod
    def resume_workflow(
        cls, workflow_id: str, *, queue_name: str | None = None, shard_key: str | None = None
    ) -> WorkflowHandle[Any]:
        """Runs a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again from its
        checkpoints (completed steps are not re-run), with a fresh recovery budget and
        deadline, on ``queue_name`` if given; a DELAYED workflow is enqueued now, its
        delay dropped. As in DBOS 3.4, a workflow that ended in ERROR or SUCCESS is left
        alone (its handle is returned); fork it from a step to run it again."""
        refuse_shard_key(shard_key)
        return cls._service().resume(workflow_id, queue_name=queue_name)

    # -- inspection -------------------------------------------------------------------

    @staticmethod
    def get_context() -> StepContext | None:
        """The running step's (or workflow's) context; None outside both."""
        return workflow_code.get_context()
