"""Operations on workflows as a whole: recovery, timekeeping, cancel, resume, fork."""

from __future__ import annotations

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.store.channels import ENQUEUED_CHANNEL
from celery_durable.store.connections import Connections
from celery_durable.store.rows import Dispatch, Redispatch, Timekeeping
from celery_durable.store.sql import operations, recovery


class OperationStore:
    """What operators, the recovery sweep and the timekeeper do to workflows (one
    statement each)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

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
        rows = self._connections.run(
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

    def notify_enqueued(self, workflow_id: str, generation: int) -> None:
        """Asks the workers to publish a committed workflow (a producer without a
        broker); a lost notification leaves it to the recovery sweep."""
        self._connections.run(
            "notifying the workers",
            lambda connection: connection.execute(
                recovery.NOTIFY_ENQUEUED,
                {"channel": ENQUEUED_CHANNEL, "payload": f"{workflow_id}:{generation}"},
            ),
        )

    def take_for_publishing(self, workflow_id: str, generation: int) -> Redispatch | None:
        """Claims the publishing of a workflow a producer without a broker committed at
        ``generation``: its new generation, or None when another worker (or the sweep)
        took it, or it runs."""
        row = self._connections.run(
            "taking a workflow to publish",
            lambda connection: connection.execute(
                recovery.TAKE_FOR_PUBLISHING,
                {"workflow_id": workflow_id, "generation": generation, "now": now_epoch_ms()},
            ).one_or_none(),
        )
        return None if row is None else Redispatch(**row._asdict(), reason="enqueued")

    def keep_time(self, *, limit: int) -> Timekeeping:
        """Cancels workflows past their deadline and releases DELAYED ones that are due
        (see ``keep_time`` in the schema); one pass at a time across the fleet."""
        rows = self._connections.run(
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
        row = self._connections.run(
            f"cancelling workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.CANCEL_WORKFLOW, {"workflow_uuid": workflow_uuid, "now": now_epoch_ms()}
            ).first(),
        )
        return row is not None

    def resume_workflow(
        self, workflow_uuid: str, *, queue_name: str | None = None, include_failed: bool = False
    ) -> Dispatch | None:
        """Makes a CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED or DELAYED workflow (an
        ERROR one too with ``include_failed``) ENQUEUED now, on ``queue_name`` if given;
        None if it was not one of those."""
        row = self._connections.run(
            f"resuming workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.RESUME_WORKFLOW,
                {
                    "workflow_uuid": workflow_uuid,
                    "now": now_epoch_ms(),
                    "queue_name": queue_name,
                    "include_failed": include_failed,
                },
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
        *,
        queue_name: str | None = None,
        replacement_children: str | None = None,
        workflow_timeout_ms: int | None = None,
    ) -> Dispatch:
        """Copies a workflow and its checkpoints before ``start_step`` into a new one,
        to run on ``application_version`` (None: on the first worker that claims it),
        on ``queue_name`` (None: the original's), with ``workflow_timeout_ms``; the
        copied checkpoints name the children ``replacement_children`` (a JSON object of
        old id to new id) maps."""
        row = self._connections.run(
            f"forking workflow {workflow_uuid}",
            lambda connection: connection.execute(
                operations.FORK_WORKFLOW,
                {
                    "workflow_uuid": workflow_uuid,
                    "forked_uuid": forked_uuid,
                    "start_step": start_step,
                    "application_version": application_version,
                    "queue_name": queue_name,
                    "replacement_children": replacement_children,
                    "workflow_timeout_ms": workflow_timeout_ms,
                    "now": now_epoch_ms(),
                },
            ).first(),
        )
        if row is None:
            raise DBOSNonExistentWorkflowError(workflow_uuid)
        return Dispatch(name=row.name, queue_name=row.queue_name, generation=0)
