"""The workers of the fleet: the workflows and queues they serve, the versions they run."""

from __future__ import annotations

from sqlalchemy import Connection

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.connections import Connections
from celery_durable.store.rows import QueueLimits, Redispatch, WorkerVersion
from celery_durable.store.sql import registry


class WorkerRegistry:
    """What workers record about themselves, and what producers ask of it."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def register(
        self, *, workflow_names: list[str], queues: list[QueueLimits], executor_id: str
    ) -> list[Redispatch]:
        """Records the workflows and queues a worker serves (at worker start); returns
        the workflows of names no worker served before that waited ENQUEUED (enqueued
        ahead of the deployment), each with a new generation, for the caller to publish."""

        def work(connection: Connection) -> list[Redispatch]:
            now = now_epoch_ms()
            released: list[Redispatch] = []
            if workflow_names:
                released = [
                    Redispatch(**row._asdict(), reason="now served")
                    for row in connection.execute(
                        registry.RELEASE_NEWLY_SERVED, {"names": workflow_names, "now": now}
                    )
                ]
                connection.execute(
                    registry.REGISTER_WORKFLOW,
                    [{"name": n, "now": now, "executor_id": executor_id} for n in workflow_names],
                )
            if queues:
                connection.execute(
                    registry.REGISTER_QUEUE,
                    [
                        {
                            "name": q.name,
                            "concurrency": q.concurrency,
                            "worker_concurrency": q.worker_concurrency,
                            "limiter_limit": q.limiter_limit,
                            "limiter_period_ms": q.limiter_period_ms,
                            "priority_enabled": q.priority_enabled,
                            "now": now,
                        }
                        for q in queues
                    ],
                )
            return released

        return self._connections.run("registering workflows and queues", work)

    def forget_worker(self, executor_id: str) -> None:
        """A worker leaves: its version no longer counts as running because of it."""
        self._connections.run(
            "forgetting a worker",
            lambda connection: connection.execute(
                registry.FORGET_WORKER, {"executor_id": executor_id, "now": now_epoch_ms()}
            ),
        )

    def is_registered(self, name: str) -> bool:
        """Whether some worker has registered (served) the workflow name ``name``."""
        return bool(
            self._connections.run(
                "reading registered workflows",
                lambda connection: connection.execute(
                    registry.IS_REGISTERED, {"name": name}
                ).scalar_one(),
            )
        )

    def list_worker_versions(self) -> list[WorkerVersion]:
        """The workers that said which application version they run, newest first."""
        rows = self._connections.run(
            "listing worker versions",
            lambda connection: connection.execute(registry.LIST_WORKER_VERSIONS).all(),
        )
        return [WorkerVersion(**row._asdict()) for row in rows]
