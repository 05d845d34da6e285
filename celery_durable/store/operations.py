"""Operations on workflows as a whole: recovery, cancel, resume, fork, wake, register."""

from __future__ import annotations

from sqlalchemy import Connection

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.store.messaging import MessagingOperations
from celery_durable.store.rows import (
    Dispatch,
    QueueLimits,
    Redispatch,
    Timekeeping,
    WorkerVersion,
)
from celery_durable.store.sql import operations, recovery, registry


class WorkflowOperations(MessagingOperations):
    """What operators and the recovery sweep do to workflows (one statement each)."""

    def recover_workflows(
        self,
        *,
        grace_ms: int,
        limit: int,
        app_version: str | None = None,
        executor_id: str | None = None,
    ) -> list[Redispatch]:
        """Picks workflows of ``app_version`` (or of none) to publish again, after
        recording that ``executor_id`` runs that version (see ``recover_workflows`` in
        the schema)."""
        rows = self._run(
            "recovering workflows",
            lambda connection: connection.execute(
                recovery.RECOVER_WORKFLOWS,
                {
                    "now": now_epoch_ms(),
                    "grace_ms": grace_ms,
                    "limit": limit,
                    "app_version": app_version,
                    "executor_id": executor_id,
                },
            ).all(),
        )
        return [Redispatch(**row._asdict()) for row in rows]

    def forget_worker(self, executor_id: str) -> None:
        """A worker leaves: its version no longer counts as running because of it."""
        self._run(
            "forgetting a worker",
            lambda connection: connection.execute(
                registry.FORGET_WORKER, {"executor_id": executor_id, "now": now_epoch_ms()}
            ),
        )

    def is_registered(self, name: str) -> bool:
        """Whether some worker has registered (served) the workflow name ``name``."""
        return bool(
            self._run(
                "reading registered workflows",
                lambda connection: connection.execute(
                    registry.IS_REGISTERED, {"name": name}
                ).scalar_one(),
            )
        )

    def list_worker_versions(self) -> list[WorkerVersion]:
        """The workers that said which application version they run, newest first."""
        rows = self._run(
            "listing worker versions",
            lambda connection: connection.execute(registry.LIST_WORKER_VERSIONS).all(),
        )
        return [WorkerVersion(**row._asdict()) for row in rows]

    def keep_time(self, *, limit: int) -> Timekeeping:
        """Cancels workflows past their deadline and releases DELAYED ones that are due
        (see ``keep_time`` in the schema); one pass at a time across the fleet."""
        rows = self._run(
            "keeping time",
            lambda connection: connection.execute(
                recovery.KEEP_TIME, {"now": now_epoch_ms(), "limit": limit}
            ).all(),
        )
        return Timekeeping(
            cancelled=[
                (r.workflow_uuid, r.parent_workflow_id) for r in rows if r.kind == "cancelled"
            ],
            due=[
                Redispatch(
                    workflow_uuid=r.workflow_uuid,
                    name=r.name,
                    queue_name=r.queue_name,
                    generation=r.generation,
                    reason="delay over",
                )
                for r in rows
                if r.kind == "due"
            ],
        )

    def cancel_workflow(self, workflow_uuid: str) -> bool:
        """Marks an ENQUEUED or PENDING workflow CANCELLED; False if it was not."""
        row = self._run(
            f"cancelling workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.CANCEL_WORKFLOW, {"workflow_uuid": workflow_uuid, "now": now_epoch_ms()}
            ).first(),
        )
        return row is not None

    def resume_workflow(self, workflow_uuid: str) -> Dispatch | None:
        """Makes a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow ENQUEUED."""
        row = self._run(
            f"resuming workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.RESUME_WORKFLOW, {"workflow_uuid": workflow_uuid, "now": now_epoch_ms()}
            ).first(),
        )
        if row is None:
            return None
        return Dispatch(
            name=row.name, queue_name=row.queue_name, generation=row.dispatch_generation
        )

    def fork_workflow(
        self,
        workflow_uuid: str,
        forked_uuid: str,
        start_step: int,
        application_version: str | None = None,
    ) -> Dispatch:
        """Copies a workflow and its checkpoints before ``start_step`` into a new one,
        to run on ``application_version`` (None: on the first worker that claims it)."""
        row = self._run(
            f"forking workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.FORK_WORKFLOW,
                {
                    "workflow_uuid": workflow_uuid,
                    "forked_uuid": forked_uuid,
                    "start_step": start_step,
                    "application_version": application_version,
                    "now": now_epoch_ms(),
                },
            ).first(),
        )
        if row is None:
            raise DBOSNonExistentWorkflowError(workflow_uuid)
        return Dispatch(name=row.name, queue_name=row.queue_name, generation=0)

    def wake_parent(self, parent_uuid: str) -> Dispatch | None:
        """After a child finished: the parent's dispatch, if it must be published."""
        row = self._run(
            f"waking workflow {parent_uuid}",
            lambda connection: connection.execute(
                operations.WAKE_PARENT, {"workflow_uuid": parent_uuid, "now": now_epoch_ms()}
            ).first(),
        )
        if row is None or not row.publish:
            return None
        return Dispatch(
            name=row.name, queue_name=row.queue_name, generation=row.dispatch_generation
        )

    def register(
        self, *, workflow_names: list[str], queues: list[QueueLimits], executor_id: str
    ) -> None:
        """Records the workflows and queues a worker serves (at worker start)."""

        def work(connection: Connection) -> None:
            now = now_epoch_ms()
            if workflow_names:
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

        self._run("registering workflows and queues", work)
