"""Executing a workflow durably: claim, replay, record the outcome.

The engine knows nothing of Celery (see :mod:`celery_durable.integration.tasks`). One
execution costs one round trip to claim the workflow and load its inputs and
checkpoints (a direct call writes the workflow's row in the same one), one INSERT per
step that runs, and one UPDATE that records the outcome and releases the fence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import WorkflowStatusString
from celery_durable.core.serialization import Serializer
from celery_durable.core.serializers import is_portable
from celery_durable.core.signals import RescheduleWorkflow, WorkflowCancelled
from celery_durable.engine import arguments, cancelled_here
from celery_durable.engine.classes import ClassRegistry, Receiver
from celery_durable.engine.context import WorkflowContext, current_workflow
from celery_durable.engine.launcher import Launcher
from celery_durable.engine.loops import run_workflow_coroutine
from celery_durable.engine.observed import observed
from celery_durable.engine.ports import EngineStore, Execution
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.engine.runs import RunOptions, RunResult
from celery_durable.error import (
    DBOSSerializationError,
    DBOSSystemDatabaseError,
    DBOSWorkflowFunctionNotFoundError,
)
from celery_durable.store import Dispatch

# RunOptions and RunResult (runs.py) are the words of WorkflowEngine.run: its callers
# import them from here with it.
__all__ = ["RunOptions", "RunResult", "WorkflowEngine"]

logger = logging.getLogger("celery_durable.engine")


class _Run:
    """One claimed execution: the workflow's function, its inputs and its context."""

    def __init__(
        self,
        engine: WorkflowEngine,
        execution: Execution,
        spec: WorkflowSpec,
        context: WorkflowContext,
        inputs: dict[str, Any],
    ) -> None:
        self._engine = engine
        self.execution = execution
        self.spec = spec
        self.context = context
        self.args: list[Any] = list(inputs["args"])
        self.kwargs: dict[str, Any] = dict(inputs["kwargs"])
        self.output: Any = None
        self.result: RunResult | None = None

    @contextlib.contextmanager
    def running(self, max_countdown_seconds: float | None) -> Iterator[None]:
        """Runs the body as the workflow's code; its outcome is recorded on the way out.

        A reschedule signal releases the workflow until its due time and propagates; a
        cancellation stops here; any other exception is the workflow's error.
        """
        token = current_workflow.set(self.context)
        try:
            yield
        except RescheduleWorkflow as signal:
            self._engine.reschedule(self.execution, signal, max_countdown_seconds)
            raise
        except WorkflowCancelled:
            self.result = RunResult(outcome="cancelled", status="CANCELLED")
        except Exception as error:
            self.result = self._engine.finish(self.execution, error=error)
        finally:
            self.context.ended = True
            current_workflow.reset(token)
        if self.result is None:
            self.result = self._engine.finish(self.execution, output=self.output)

    def ended(self) -> RunResult:
        """The run's result, with the dispatch its claim woke (if any)."""
        assert self.result is not None
        woken = self.execution.claim.woken
        return self.result if woken is None else dataclasses.replace(self.result, woken=woken)


class WorkflowEngine:
    """Runs workflows of one process against its system database.

    Args:
        launcher: Starts and runs child workflows (the layer above implements it).
        dispatch: Publishes a workflow's next message; the engine calls it to wake a
            parent when its child finishes.
        application_version: The version of the code this process runs: it claims only
            workflows of this version, or of none (which it stamps with it).
        version_live_ms: A version whose workers swept within this long is running
            (0: none counts as running; with no ``application_version``, unused).
        classes: Where a method's recorded receiver is found again.
    """

    def __init__(
        self,
        *,
        store: EngineStore,
        serializer: Serializer,
        executor_id: str,
        lookup: Callable[[str], WorkflowSpec | None],
        launcher: Launcher,
        dispatch: Callable[[str, Dispatch], None],
        application_version: str | None = None,
        version_live_ms: int = 0,
        classes: ClassRegistry | None = None,
    ) -> None:
        self.store = store
        self.application_version = application_version
        self.version_live_ms = version_live_ms
        self.serializer = serializer
        self.executor_id = executor_id
        self._lookup = lookup
        self._launcher = launcher
        self._dispatch = dispatch
        self._classes = classes or ClassRegistry()

    def run(self, workflow_id: str, options: RunOptions) -> RunResult:
        """Executes (or replays) a workflow once, in this thread (an ``async def``
        workflow in an event loop of its own, after any other of this OS thread's:
        :mod:`~celery_durable.engine.loops`).

        Raises:
            RescheduleWorkflow: the workflow must run again after the countdown; it has
                been released (its ``parked`` and ``due_at_epoch_ms`` say how; the
                next delivery's generation is this one's plus one, as Celery's retry
                count).
        """
        with self._claimed(workflow_id, options) as claimed:
            if isinstance(claimed, RunResult):
                return claimed
            with observed(claimed), claimed.running(options.max_countdown_seconds):
                function = claimed.spec.function
                if claimed.spec.is_async:
                    claimed.output = run_workflow_coroutine(
                        workflow_id, function, claimed.args, claimed.kwargs
                    )
                else:
                    claimed.output = function(*claimed.args, **claimed.kwargs)
            return claimed.ended()

    async def run_async(self, workflow_id: str, options: RunOptions) -> RunResult:
        """``run`` for an ``async def`` workflow, in the running event loop."""
        with self._claimed(workflow_id, options) as claimed:
            if isinstance(claimed, RunResult):
                return claimed
            with observed(claimed), claimed.running(options.max_countdown_seconds):
                claimed.output = await claimed.spec.function(*claimed.args, **claimed.kwargs)
            return claimed.ended()

    @contextlib.contextmanager
    def _claimed(self, workflow_id: str, options: RunOptions) -> Iterator[_Run | RunResult]:
        """Claims the workflow; yields its run, or the claim's result if nothing runs."""
        with self.store.executions.claim(
            workflow_id,
            options.executor_id or self.executor_id,
            generation=options.generation,
            max_recovery_attempts=options.max_recovery_attempts,
            new=options.new,
            app_version=self.application_version,
            version_live_ms=self.version_live_ms,
            reported=options.reported,
        ) as execution:
            yield self._prepare(execution, options.inline_retries)

    def _prepare(self, execution: Execution, inline_retries: bool) -> _Run | RunResult:
        claim = execution.claim
        if claim.outcome != "claimed":
            return RunResult(
                outcome=claim.outcome,
                status=claim.status,
                wait_seconds=(claim.wait_ms or 0) / 1000,
                recorded=claim.recorded,
                app_version=claim.app_version,
                woken=claim.woken,
            )
        assert claim.name is not None and claim.inputs is not None
        cancelled_here.note_claimed(execution.workflow_uuid)
        spec = self._lookup(claim.name)
        if spec is None:
            # Leave the workflow as it is: a process that knows it can run it later.
            raise DBOSWorkflowFunctionNotFoundError(
                claim.name,
                f"Workflow {execution.workflow_uuid} calls {claim.name!r}, which this process "
                "has not registered (is the module that defines it imported by the worker?)",
            )
        try:
            inputs = arguments.load_inputs(spec, claim.inputs, self.serializer)
        except DBOSSerializationError as error:
            failure = DBOSSerializationError(
                f"Workflow {execution.workflow_uuid}: cannot deserialize its inputs: {error}"
            )
            return self.finish(execution, error=failure)
        except Exception as invalid:  # validate_args refused them: the workflow's error
            return self.finish(execution, error=invalid)
        recorded_receiver = inputs.get("receiver")
        if recorded_receiver is not None:
            # Raises if this process lacks it: the workflow stays for one that has it.
            receiver = self._classes.resolve(
                execution.workflow_uuid, Receiver.decode(recorded_receiver)
            )
            inputs["args"] = [receiver, *inputs["args"]]
        context = WorkflowContext(
            workflow_id=execution.workflow_uuid,
            workflow_name=claim.name,
            authenticated_user=claim.authenticated_user,
            checkpoints=claim.checkpoints,
            execution=execution,
            store=self.store,
            serializer=self.serializer,
            launcher=self._launcher,
            inline_retries=inline_retries,
            portable=is_portable(claim.inputs),
        )
        return _Run(self, execution, spec, context, inputs)

    def reschedule(
        self,
        execution: Execution,
        signal: RescheduleWorkflow,
        max_countdown_seconds: float | None,
    ) -> None:
        """Releases the workflow until the signal's due time; fills in how it is due."""
        now = now_epoch_ms()
        due = now + round(signal.countdown_seconds * 1000)
        parked = (
            max_countdown_seconds is not None and signal.countdown_seconds > max_countdown_seconds
        )
        signal.due_at_epoch_ms, signal.parked = due, parked
        try:
            rescheduled = execution.reschedule(
                due_at_epoch_ms=due, parked=parked, wait=signal.wait, checkpoint=signal.checkpoint
            )
        except DBOSSystemDatabaseError:
            # The database is gone, and with it the fence. A later delivery (this
            # retry's, or the sweep's) runs the workflow again.
            logger.warning("Workflow %s: could not record its reschedule", execution.workflow_uuid)
            return
        if rescheduled is None:
            return
        if signal.after_parked is not None:  # what waits for the checkpoint's commit
            signal.after_parked()
        signal.parked, signal.generation = rescheduled.parked, rescheduled.generation
        woken = execution.claim.woken
        if woken is not None:  # a claim after a task's outcome: where its messages go
            signal.workflow_name, signal.queue_name = woken.name, woken.queue_name
        if rescheduled.due_at_epoch_ms < due:  # a child finished meanwhile: go at once
            signal.due_at_epoch_ms = rescheduled.due_at_epoch_ms
            # Against the clock after the statement: the due time it wrote is that
            # statement's "now", a millisecond or two after ``now`` above.
            remaining = rescheduled.due_at_epoch_ms - now_epoch_ms()
            signal.countdown_seconds = max(0.0, remaining / 1000)

    def finish(
        self,
        execution: Execution,
        *,
        output: Any = None,
        error: BaseException | None = None,
    ) -> RunResult:
        """Records the workflow's outcome (and wakes its parent, if it has one)."""
        serializer = arguments.outcome_serializer(execution.claim.inputs, self.serializer)
        if error is None:
            try:
                encoded_output = serializer.dumps(output)
            except DBOSSerializationError as serialization_error:
                error = serialization_error
        if error is not None:
            status = WorkflowStatusString.ERROR
            written = execution.complete(status, output=None, error=serializer.dumps(error))
        else:
            status = WorkflowStatusString.SUCCESS
            written = execution.complete(status, output=encoded_output, error=None)
        if not written:
            # Someone else changed the workflow's status (for example cancelled it).
            return RunResult(outcome="finished", status=None)
        parent = execution.claim.parent_workflow_id
        if parent is not None:
            self.wake(parent)
        return RunResult(
            outcome="completed",
            status=status,
            output=output,
            error=error,
            in_canvas=execution.in_canvas,
        )

    def wake(self, parent_workflow_id: str) -> None:
        """Lets a parent waiting on a child run now (best effort: it also polls)."""
        try:
            dispatch = self.store.executions.wake_parent(parent_workflow_id)
            if dispatch is not None:
                self._dispatch(parent_workflow_id, dispatch)
        except Exception:
            logger.warning("Could not wake parent workflow %s", parent_workflow_id, exc_info=True)
