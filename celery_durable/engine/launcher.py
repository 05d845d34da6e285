"""What the engine needs from the layer above it to start and run child workflows.

The engine knows nothing of Celery: the Celery integration's ``WorkflowStarter`` implements
this protocol, and the engine reaches it through the running workflow's context.
"""

from __future__ import annotations

from typing import Any, Protocol

from celery_durable.engine.registry import WorkflowSpec
from celery_durable.store import Dispatch


class Launcher(Protocol):
    """Starts child workflows and runs them in-process."""

    @property
    def child_poll_seconds(self) -> float:
        """How often a parent waiting on a child checks on it (in case the child's
        wake-up message was lost)."""
        ...

    def start_child(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str,
        parent_workflow_id: str,
        publish: bool,
        queue_name: str | None = None,
    ) -> None:
        """Creates the child's row unless it exists (on ``queue_name``, or Celery's
        routing for its name); publishes it if it is new and ``publish`` (a direct
        call's awaited child runs in-process instead)."""
        ...

    def run_inline(self, workflow_id: str, spec: WorkflowSpec) -> Any:
        """Runs a workflow to its end in this thread; returns its output or raises."""
        ...

    def publish(self, workflow_id: str, dispatch: Dispatch) -> None:
        """Publishes a workflow that a message or an event made due."""
        ...

    def dispatch_task(
        self, signature: Any, *, task_id: str, workflow_id: str, function_id: int
    ) -> None:
        """Sends one attempt of a Celery task a workflow called (``DBOS.run_task``) with
        task id ``task_id`` and the callbacks that record its outcome in operation
        ``function_id`` of ``workflow_id`` and wake the workflow."""
        ...

    def report_unsent_task(
        self, workflow_id: str, function_id: int, task_id: str, error: BaseException
    ) -> None:
        """Records attempt ``task_id`` of operation ``function_id`` as failed with
        ``error`` (it could not be sent), as its error callback would, and wakes the
        workflow."""
        ...
