"""Executing a workflow durably: claim, replay, record the outcome.

The engine knows nothing of Celery (see :mod:`celery_durable.celery_tasks`). One
execution costs one round trip to claim the workflow and load its inputs and
checkpoints (a direct call writes the workflow's row in the same one), one INSERT per
step that runs, and one UPDATE that records the outcome and releases the fence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from celery_durable._signals import RescheduleWorkflow, WorkflowCancelled
from celery_durable.context import WorkflowContext, current_workflow
from celery_durable.error import (
    DBOSSerializationError,
    DBOSSystemDatabaseError,
    DBOSWorkflowFunctionNotFoundError,
)
from celery_durable.records import WorkflowStatusString
from celery_durable.registry import WorkflowSpec
from celery_durable.serialization import Serializer
from celery_durable.store import (
    Dispatch,
    NewWorkflow,
    SystemStore,
    WorkflowExecution,
    now_epoch_ms,
)

logger = logging.getLogger("celery_durable.engine")


RunOutcome = Literal[
    "completed", "busy", "stale", "finished", "missing", "exceeded", "throttled", "cancelled"
]


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What one execution attempt came to.

    ``outcome`` is ``completed`` when this execution ran the workflow to its end (then
    ``status`` is SUCCESS or ERROR with ``output`` or ``error``); ``cancelled`` when it
    stopped at a step boundary because the workflow was cancelled; otherwise it is the
    claim's outcome (``busy``, ``stale``, ``finished``, ``missing``, ``exceeded``, or
    ``throttled``: its queue's limits hold it for ``wait_seconds``) and nothing ran.
    """

    outcome: RunOutcome
    status: str | None
    output: Any = None
    error: BaseException | None = None
    wait_seconds: float = 0.0
    # A direct call that found its workflow finished: the recorded (output, error).
    recorded: tuple[str | None, str | None] | None = None


class Engine:
    """Runs workflows of one process against its system database.

    Args:
        dispatch: Publishes a workflow's next message (the Celery integration's); the
            engine calls it to wake a parent when its child finishes.
    """

    def __init__(
        self,
        *,
        store: SystemStore,
        serializer: Serializer,
        executor_id: str,
        lookup: Callable[[str], WorkflowSpec | None],
        dispatch: Callable[[str, Dispatch], None],
    ) -> None:
        self.store = store
        self.serializer = serializer
        self.executor_id = executor_id
        self._lookup = lookup
        self._dispatch = dispatch

    def run(
        self,
        workflow_id: str,
        *,
        inline_retries: bool,
        generation: int | None = None,
        max_countdown_seconds: float | None = None,
        max_recovery_attempts: int | None = None,
        executor_id: str | None = None,
        new: NewWorkflow | None = None,
    ) -> RunResult:
        """Executes (or replays) a workflow once, in this thread.

        Args:
            inline_retries: Step retries sleep in this thread (a direct call) instead
                of raising :class:`RescheduleWorkflow`.
            generation: The delivery's dispatch generation (None: not a delivery).
            max_countdown_seconds: Longer waits are parked in PostgreSQL for the
                recovery sweep instead of riding the broker.
            max_recovery_attempts: The workflow code's declaration, which overrides
                the one recorded when the workflow was enqueued.
            executor_id: Who runs it (default: this process); queues'
                ``worker_concurrency`` counts per executor.
            new: A direct call's new workflow: written in the claim's round trip.

        Raises:
            RescheduleWorkflow: the workflow must run again after the countdown; it has
                been released (its ``generation``, ``parked`` and ``due_at_epoch_ms``
                say how).
        """
        with self.store.execute_workflow(
            workflow_id,
            executor_id or self.executor_id,
            generation=generation,
            max_recovery_attempts=max_recovery_attempts,
            new=new,
        ) as execution:
            prepared = self._prepare(execution, inline_retries)
            if isinstance(prepared, RunResult):
                return prepared
            spec, context, args, kwargs = prepared
            token = current_workflow.set(context)
            try:
                if spec.is_async:
                    output = asyncio.run(spec.function(*args, **kwargs))
                else:
                    output = spec.function(*args, **kwargs)
            except RescheduleWorkflow as signal:
                self._reschedule(execution, signal, max_countdown_seconds)
                raise
            except WorkflowCancelled:
                return RunResult(outcome="cancelled", status="CANCELLED")
            except Exception as error:
                return self._finish(execution, error=error)
            finally:
                current_workflow.reset(token)
            return self._finish(execution, output=output)

    async def run_async(
        self, workflow_id: str, *, inline_retries: bool, new: NewWorkflow | None = None
    ) -> RunResult:
        """Executes an ``async def`` workflow in the running event loop."""
        with self.store.execute_workflow(workflow_id, self.executor_id, new=new) as execution:
            prepared = self._prepare(execution, inline_retries)
            if isinstance(prepared, RunResult):
                return prepared
            spec, context, args, kwargs = prepared
            token = current_workflow.set(context)
            try:
                output = await spec.function(*args, **kwargs)
            except RescheduleWorkflow as signal:
                self._reschedule(execution, signal, None)
                raise
            except WorkflowCancelled:
                return RunResult(outcome="cancelled", status="CANCELLED")
            except Exception as error:
                return self._finish(execution, error=error)
            finally:
                current_workflow.reset(token)
            return self._finish(execution, output=output)

    def _reschedule(
        self,
        execution: WorkflowExecution,
        signal: RescheduleWorkflow,
        max_countdown_seconds: float | None,
    ) -> None:
        now = now_epoch_ms()
        due = now + round(signal.countdown_seconds * 1000)
        parked = (
            max_countdown_seconds is not None and signal.countdown_seconds > max_countdown_seconds
        )
        signal.due_at_epoch_ms, signal.parked = due, parked
        try:
            rescheduled = execution.reschedule(due_at_epoch_ms=due, parked=parked)
        except DBOSSystemDatabaseError:
            # The database is gone, and with it the fence. A later delivery (this
            # retry's, or the sweep's) runs the workflow again.
            logger.warning("Workflow %s: could not record its reschedule", execution.workflow_uuid)
            return
        if rescheduled is None:
            return
        signal.generation = rescheduled.generation
        signal.parked = rescheduled.parked
        if rescheduled.due_at_epoch_ms < due:  # a child finished meanwhile: go at once
            signal.due_at_epoch_ms = rescheduled.due_at_epoch_ms
            signal.countdown_seconds = max(0.0, (rescheduled.due_at_epoch_ms - now) / 1000)

    def _prepare(
        self, execution: WorkflowExecution, inline_retries: bool
    ) -> RunResult | tuple[WorkflowSpec, WorkflowContext, list[Any], dict[str, Any]]:
        claim = execution.claim
        if claim.outcome != "claimed":
            return RunResult(
                outcome=claim.outcome,
                status=claim.status,
                wait_seconds=(claim.wait_ms or 0) / 1000,
                recorded=claim.recorded,
            )
        assert claim.name is not None and claim.inputs is not None
        spec = self._lookup(claim.name)
        if spec is None:
            # Leave the workflow as it is: a process that knows it can run it later.
            raise DBOSWorkflowFunctionNotFoundError(
                claim.name,
                f"Workflow {execution.workflow_uuid} calls {claim.name!r}, which this process "
                "has not registered (is the module that defines it imported by the worker?)",
            )
        try:
            inputs = self.serializer.loads(claim.inputs)
        except DBOSSerializationError as error:
            failure = DBOSSerializationError(
                f"Workflow {execution.workflow_uuid}: cannot deserialize its inputs: {error}"
            )
            return self._finish(execution, error=failure)
        context = WorkflowContext(
            workflow_id=execution.workflow_uuid,
            workflow_name=claim.name,
            authenticated_user=claim.authenticated_user,
            checkpoints=claim.checkpoints,
            execution=execution,
            serializer=self.serializer,
            inline_retries=inline_retries,
        )
        return spec, context, list(inputs["args"]), dict(inputs["kwargs"])

    def _finish(
        self,
        execution: WorkflowExecution,
        *,
        output: Any = None,
        error: BaseException | None = None,
    ) -> RunResult:
        if error is None:
            try:
                encoded_output = self.serializer.dumps(output)
            except DBOSSerializationError as serialization_error:
                error = serialization_error
        if error is not None:
            status = WorkflowStatusString.ERROR
            written = execution.complete(status, output=None, error=self.serializer.dumps(error))
        else:
            status = WorkflowStatusString.SUCCESS
            written = execution.complete(status, output=encoded_output, error=None)
        if not written:
            # Someone else changed the workflow's status (for example cancelled it).
            return RunResult(outcome="finished", status=None)
        parent = execution.claim.parent_workflow_id
        if parent is not None:
            self.wake(parent)
        return RunResult(outcome="completed", status=status, output=output, error=error)

    def wake(self, parent_workflow_id: str) -> None:
        """Lets a parent waiting on a child run now (best effort: it also polls)."""
        try:
            dispatch = self.store.wake_parent(parent_workflow_id)
            if dispatch is not None:
                self._dispatch(parent_workflow_id, dispatch)
        except Exception:
            logger.warning("Could not wake parent workflow %s", parent_workflow_id, exc_info=True)
