"""Operating on existing workflows: cancelling, resuming and forking them, the worker's
periodic passes (recovery, timekeeping, cron schedules) and its registration."""

from __future__ import annotations

import functools
import json
import logging
import uuid

from celery_durable.core import forking
from celery_durable.engine import cancelled_here
from celery_durable.engine.context import next_workflow_id
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.integration import canvas, publishing
from celery_durable.integration.process import ProcessServices
from celery_durable.integration.recovery import DEFAULT_BATCH, recover
from celery_durable.integration.schedule_keeper import ScheduleKeeper
from celery_durable.integration.starting import WorkflowStarter
from celery_durable.store import Redispatch

logger = logging.getLogger("celery_durable.runtime")


class WorkflowOperator:
    """Changes the state of workflows that exist, and keeps the worker's passes."""

    def __init__(self, process: ProcessServices, starter: WorkflowStarter) -> None:
        self.process = process
        self.starter = starter

    # -- a worker's passes ------------------------------------------------------------

    @functools.cached_property
    def schedules(self) -> ScheduleKeeper:
        """The cron schedules, fired by :meth:`keep_time`."""
        return ScheduleKeeper(self.process, self.starter)

    def register_served(self, executor_id: str) -> None:
        """Records the workflow names a worker serves (its queues: see ``engine``) and
        its application version (``list_application_versions``)."""
        self.process.worker_engine()  # migrates the schemas, once per worker process
        self.process.store.workers.register(
            workflow_names=[spec.name for spec in self.process.registry.all()],
            queues=[],
            executor_id=executor_id,
        )
        self.process.store.management.register_version(self.process.application_version)

    def keep_time(self) -> int:
        """One timekeeping pass: cancels workflows past their deadline (waking their
        parents), publishes DELAYED workflows that are due, and fires the cron schedules'
        due ticks. Returns how many."""
        process = self.process
        passed = process.store.operations.keep_time(limit=1000)
        for workflow_id, parent in passed.cancelled:
            logger.info("Workflow %s reached its deadline: CANCELLED", workflow_id)
            if parent is not None:
                process.engine().wake(parent)
        for due in passed.due:
            # A failed publish is left to the recovery sweep: the row is ENQUEUED and due.
            publishing.publish_new_workflow(
                process.celery,
                due.name,
                due.workflow_uuid,
                queue=due.queue_name,
                generation=due.generation,
            )
        return len(passed.cancelled) + len(passed.due) + self.schedules.fire()

    def recover(self, executor_id: str | None = None) -> list[Redispatch]:
        """One recovery sweep (skipped, with an empty result, while another runs).

        A worker's sweep names the worker (``executor_id``): it records the worker's
        application version and publishes only workflows of that version (or of none).
        """
        process = self.process
        grace_seconds = process.config["recovery_grace_seconds"]
        redispatches = recover(
            process.store,
            process.celery,
            grace_seconds=grace_seconds,
            app_version=None if executor_id is None else process.application_version,
            executor_id=executor_id,
        )
        # Finished workflows whose canvas callbacks nobody fired: published to fire them.
        canvas.fire_overdue(process, grace_seconds=grace_seconds, batch=DEFAULT_BATCH)
        return redispatches

    def leave(self, executor_id: str) -> None:
        """A worker stops: its application version no longer counts as running."""
        self.process.store.workers.forget_worker(executor_id)

    # -- operating workflows ----------------------------------------------------------

    def cancel(self, workflow_id: str) -> None:
        """Cancels a workflow: it stops at its next step boundary; waits are dropped."""
        store = self.process.store
        if not store.operations.cancel_workflow(workflow_id):
            if store.workflows.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
            return  # already finished: nothing to cancel
        cancelled_here.note_cancelled(workflow_id)
        row = store.workflows.get_workflow(workflow_id)
        if row is not None and row.parent_workflow_id is not None:
            self.process.engine().wake(row.parent_workflow_id)

    def resume(
        self, workflow_id: str, *, queue_name: str | None = None, include_failed: bool = False
    ) -> None:
        """Runs a cancelled workflow (or one out of recovery attempts; a failed one too
        with ``include_failed``) again from its checkpoints, on ``queue_name`` if given.
        Any other workflow is left alone, as in DBOS 3.4."""
        store = self.process.store
        dispatch = store.operations.resume_workflow(
            workflow_id, queue_name=queue_name, include_failed=include_failed
        )
        if dispatch is None:
            if store.workflows.get_outcome(workflow_id) is None:
                raise DBOSNonExistentWorkflowError(workflow_id)
        else:
            self.starter.publish(workflow_id, dispatch)

    def fork(
        self,
        workflow_id: str,
        start_step: int,
        application_version: str | None = None,
        *,
        queue_name: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> str:
        """A new workflow with the same inputs that replays the operations before
        ``start_step`` (a ``function_id``; the rule is ``core.forking``'s), on
        ``application_version`` (None: on the first worker that claims it), on
        ``queue_name`` (None: the original's), with a timeout of ``timeout_seconds``
        (None: none), its copied checkpoints naming the children
        ``replacement_children`` maps (old id to new id) by their new ids."""
        start_step = forking.start_step(start_step)
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise DBOSException(
                f"Invalid workflow timeout {timeout_seconds}. Timeouts must be positive."
            )
        if application_version is not None and (
            not isinstance(application_version, str) or not application_version
        ):
            raise DBOSException(
                f"application_version must be a non-empty string, not {application_version!r}"
            )
        forked_id = next_workflow_id.get() or str(uuid.uuid4())
        next_workflow_id.set(None)
        store = self.process.store
        dispatch = store.operations.fork_workflow(
            workflow_id,
            forked_id,
            start_step,
            application_version,
            queue_name=queue_name,
            replacement_children=(
                None if replacement_children is None else json.dumps(replacement_children)
            ),
            workflow_timeout_ms=None if timeout_seconds is None else round(timeout_seconds * 1000),
        )
        self.starter.publish(forked_id, dispatch)
        return forked_id
