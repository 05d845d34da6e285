"""How each facade gets its :class:`~celery_durable.service.workflows.WorkflowService`:
``DBOS``'s is wired into its Celery app (workflow tasks, the workers' hooks, the beat
task, tracing); the client's and the CLI's only read, write and publish."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery

from celery_durable.core.serialization import SerializerChoice
from celery_durable.engine.registry import Registry, WorkflowSpec
from celery_durable.error import DBOSInitializationError
from celery_durable.integration.config import DBOSConfig
from celery_durable.integration.default_app import build_celery_app, publish_in_calling_module
from celery_durable.integration.lifecycle import WorkerHooks, register_recovery_task
from celery_durable.integration.operating import WorkflowOperator
from celery_durable.integration.runtime import Runtime
from celery_durable.integration.task_calls import register_task_callbacks
from celery_durable.integration.tasks import register_workflow_task
from celery_durable.observability.setup import configure_tracing
from celery_durable.service.outside_workflow import ClientWorkflowService
from celery_durable.service.workflows import WorkflowService
from celery_durable.store import QueueLimits, redact

logger = logging.getLogger("celery_durable.service")


def dbos_service(
    *,
    celery: Celery | None,
    config: DBOSConfig,
    registry: Registry,
    queues: dict[str, QueueLimits],
    scheduled: dict[str, str],
) -> WorkflowService:
    """The service of ``DBOS(celery=..., config=...)``, not yet connected to the app's
    workers (see :func:`connect_workers`). Without ``celery``, it builds the app and, by
    default, runs a worker in this process from ``launch()``.

    Args:
        registry: The process's workflows.
        queues: The process's ``Queue`` limits.
        scheduled: The ``@DBOS.scheduled`` workflows declared so far (name -> cron).
    """
    config = {**config}
    if celery is None:
        celery = build_celery_app(config.get("name") or "dbos", config.get("broker_url"))
        publish_in_calling_module(celery)
        config.setdefault("in_process_worker", True)
    elif config.get("broker_url"):
        raise DBOSInitializationError(
            'config["broker_url"] is for the app DBOS builds without celery=: set the '
            "broker on the Celery app you pass"
        )
    _set_log_level(config.get("log_level"))
    service = WorkflowService(
        Runtime(celery=celery, config=config, registry=registry, queues=queues)
    )
    for name, cron in scheduled.items():
        service.schedules.declare(name, cron)
    return service


def _set_log_level(level: str | None) -> None:
    """DBOS's ``log_level``: the level of the ``dbos`` and ``celery_durable`` loggers."""
    if level is None:
        return
    try:
        for name in ("dbos", "celery_durable"):
            logging.getLogger(name).setLevel(level.upper())
    except (ValueError, TypeError, AttributeError):
        raise DBOSInitializationError(
            f'config["log_level"] must be a logging level name such as "INFO", not {level!r}'
        ) from None


def connect_workers(
    service: WorkflowService,
    *,
    current: Callable[[], WorkflowService | None],
    require: Callable[[], WorkflowService],
) -> None:
    """Gives each of the registry's workflows (now and later) its Celery task, adds the
    beat task and the workers' hooks, and turns tracing on as configured; releasing the
    service disconnects the hooks.

    Args:
        current: The service configured when a task runs or a worker starts (a process
            may configure DBOS again: this one's hooks then do nothing), or None.
        require: The same, raising ``DBOSInitializationError`` when there is none.
    """
    process = service.runtime.process
    settings = process.config

    def current_operator() -> WorkflowOperator | None:
        configured = current()
        return None if configured is None else configured.runtime.operator

    def register_task(spec: WorkflowSpec) -> None:
        if current() is service:
            # The task finds the configuration of the moment it runs (Celery keeps the
            # first task of a name).
            register_workflow_task(process.celery, spec, lambda: require().runtime.process)
            worker = service.runtime.in_process_worker
            if worker is not None:
                worker.refresh()
                if worker.running:
                    _register_served_now(service.runtime.operator, worker.hostname)

    process.registry.subscribe(register_task)
    register_task_callbacks(process.celery, lambda: require().runtime.process)
    register_recovery_task(
        process.celery, lambda: require().recover(), settings["recovery_interval_seconds"]
    )
    hooks = WorkerHooks(
        current_operator,
        owner=service.runtime.operator,
        interval_seconds=settings["recovery_interval_seconds"],
        recover_on_start=settings["recover_on_worker_start"],
    )
    service.on_release(hooks.disconnect)
    configure_tracing(settings.get("tracing"))


def client_service(
    system_database_url: str,
    celery: Celery | None,
    serializer: SerializerChoice,
    pool_size: int | None = None,
) -> WorkflowService:
    """A producer's service: no registered workflows, a small pool (2 connections
    unless ``pool_size``). Without ``celery`` it publishes nothing: the workers publish
    what it commits (LISTEN/NOTIFY)."""
    service = ClientWorkflowService(
        Runtime(
            celery=celery or Celery("celery_durable_client", set_as_current=False),
            config={
                "name": "celery_durable_client",
                "system_database_url": system_database_url,
                "serializer": serializer,
                "sys_db_pool_size": 2 if pool_size is None else pool_size,
            },
            registry=Registry(),
            queues={},
        )
    )
    service.runtime.starter.through_postgres = celery is None
    return service


def command_service(
    celery: Celery,
    database_url: str,
    *,
    registry: Registry,
    queues: dict[str, QueueLimits],
) -> WorkflowService:
    """The ``celery-durable`` command's service: the workflows and queues of the code it
    imported (``CELERY_DURABLE_IMPORTS``), none otherwise."""
    return WorkflowService(
        Runtime(
            celery=celery,
            config={"name": "celery-durable-cli", "system_database_url": database_url},
            registry=registry,
            queues=queues,
        )
    )


def described(service: WorkflowService) -> str:
    """The service's system database, its password hidden (for log lines)."""
    return redact(service.runtime.process.store.url)


def _register_served_now(operator: WorkflowOperator, hostname: str) -> None:
    """A workflow defined after ``DBOS.launch()``: the running in-process worker serves
    it, and says so at once (a ``DBOSClient`` enqueues only names a worker serves)."""
    try:
        operator.register_served(hostname)
    except Exception as error:  # the next definition (or worker start) tries again
        logger.warning("Could not record the workflows %s serves: %s", hostname, error)
