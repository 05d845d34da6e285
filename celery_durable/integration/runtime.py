"""One configuration of celery_durable in one process: the composition root.

The facades (``DBOS``, ``DBOSClient``) hold one ``Runtime`` and reach its three parts:

- :class:`~celery_durable.integration.process.ProcessServices` (``.process``): the
  validated configuration, both stores, migrations and this process's engine;
- :class:`~celery_durable.integration.starting.WorkflowStarter` (``.starter``): rows,
  enqueueing, publishing and direct calls — the engine's
  :class:`~celery_durable.engine.launcher.Launcher`;
- :class:`~celery_durable.integration.operating.WorkflowOperator` (``.operator``):
  cancel, resume, fork, recovery, timekeeping and schedules.

Everything here receives its collaborators explicitly (the registries are passed in,
not imported).
"""

from __future__ import annotations

from celery import Celery

from celery_durable.engine.registry import Registry
from celery_durable.integration.config import DBOSConfig
from celery_durable.integration.inprocess_worker import InProcessWorker, default_threads
from celery_durable.integration.operating import WorkflowOperator
from celery_durable.integration.process import ProcessServices
from celery_durable.integration.starting import WorkflowStarter
from celery_durable.store import QueueLimits


class Runtime:
    """The machinery behind the facade, for one Celery app and configuration."""

    def __init__(
        self,
        *,
        celery: Celery,
        config: DBOSConfig,
        registry: Registry,
        queues: dict[str, QueueLimits],
    ) -> None:
        self.process = ProcessServices(
            celery=celery, config=config, registry=registry, queues=queues
        )
        self.starter = WorkflowStarter(self.process)
        self.process.launcher = self.starter
        self.operator = WorkflowOperator(self.process, self.starter)
        # The Celery worker ``DBOS.launch()`` runs in this process, when configured.
        self.in_process_worker: InProcessWorker | None = None
        if self.process.config.get("in_process_worker"):
            threads = self.process.config.get("max_executor_threads") or default_threads()
            self.in_process_worker = InProcessWorker(
                celery, threads=threads, queue_names=lambda: list(queues)
            )
