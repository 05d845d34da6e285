"""Running one step call: replay its checkpoint, or attempt it and record the outcome.

The engine knows nothing of Celery. When a step must wait before its next attempt, a
workflow under Celery raises :class:`RescheduleWorkflow` (the Celery integration turns
it into ``Task.retry(countdown=...)``); a direct in-process call, or a step called
outside any workflow, sleeps instead. The synchronous and ``async def`` runners share
:class:`StepRun`; they differ only in how they call the function and sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from celery_durable.core import instrumentation
from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.instrumentation import StepOutcome
from celery_durable.core.records import StepRecord
from celery_durable.core.retry import RetryPolicy
from celery_durable.core.signals import RescheduleWorkflow, WorkflowCancelled
from celery_durable.engine import checkpoints, step_supervision
from celery_durable.engine.context import (
    StepContext,
    WorkflowContext,
    current_step,
    current_workflow,
    next_workflow_id,
)
from celery_durable.error import (
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSSerializationError,
)

logger = logging.getLogger("celery_durable.steps")


@dataclass(frozen=True, kw_only=True)
class StepSpec:
    name: str
    policy: RetryPolicy
    # DBOS 3.4's options, for ``async def`` steps only (see engine.step_supervision).
    preemptible: bool = False
    timeout_seconds: float | None = None

    @property
    def supervised(self) -> bool:
        return self.preemptible or self.timeout_seconds is not None


class StepRun:
    """The attempts of one step call; recording is skipped outside a workflow.

    Drive it with ``while not run.finished``: wait ``run.wait_in_process()`` seconds,
    then call the function inside ``with run.attempt():`` storing its value in
    ``run.value``; finally ``run.result()``.
    """

    def __init__(
        self, spec: StepSpec, workflow: WorkflowContext | None, function_id: int | None = None
    ) -> None:
        self.spec = spec
        self.workflow = workflow
        self.function_id: int | None = None
        self.checkpoint: StepRecord | None = None
        self.attempts_made = 0
        self.attempt_log: list[dict[str, Any]] = []
        self.first_started_at_epoch_ms: int | None = None
        self._attempt_started_at_epoch_ms = 0
        self.due_at_epoch_ms = 0
        self.last_error: Exception | None = None
        # An async validator's verdict on the attempt's error, awaited by the async
        # step's loop before the attempt ends (None: the policy decides).
        self.verdict: bool | None = None
        self.value: Any = None
        self.finished = False
        if workflow is not None:
            self.function_id = workflow.next_function_id() if function_id is None else function_id
            self.checkpoint = workflow.checkpoints.get(self.function_id)
            if self.checkpoint is not None:
                self._resume_from(self.checkpoint, workflow)

    def _resume_from(self, checkpoint: StepRecord, workflow: WorkflowContext) -> None:
        checkpoints.expect_name(
            workflow, checkpoint.function_id, self.spec.name, checkpoint.function_name
        )
        self.finished = checkpoint.completed
        self.attempts_made = checkpoint.attempts
        self.first_started_at_epoch_ms = checkpoint.started_at_epoch_ms
        if checkpoint.attempt_log is not None:
            self.attempt_log = checkpoints.load(
                workflow, checkpoint.function_id, self.spec.name, checkpoint.attempt_log
            )
        self.due_at_epoch_ms = checkpoint.retry_due_at_epoch_ms or 0

    def result(self) -> Any:
        """The step's value: the one just returned, or the recorded one (or its error)."""
        if self.checkpoint is not None and self.checkpoint.completed:
            assert self.workflow is not None
            return checkpoints.replay(self.workflow, self.checkpoint)
        return self.value

    def wait_in_process(self) -> float:
        """Seconds to sleep here before the next attempt (0: it is due).

        Raises:
            RescheduleWorkflow: under Celery, to free the worker until it is due.
            WorkflowCancelled: this process cancelled the workflow (see
                ``engine.live_executions``): the attempt does not run.
        """
        if self.workflow is not None and self.workflow.cancel_requested:
            raise WorkflowCancelled(self.workflow.workflow_id)
        wait = max(0.0, (self.due_at_epoch_ms - now_epoch_ms()) / 1000)
        workflow = self.workflow
        # Waits here: a direct call, or a task the workflow's code created (in_side_task).
        waits_here = workflow is None or workflow.inline_retries or workflow.in_side_task()
        if wait > 0 and not waits_here:
            raise self._reschedule(wait)
        return wait

    def _reschedule(self, wait_seconds: float) -> RescheduleWorkflow:
        """The signal that frees the worker until the next attempt is due."""
        attempt = self.attempts_made
        budget = self.spec.policy.attempts_allowed
        if self.last_error is not None:
            reason = (
                f"step '{self.spec.name}' attempt {attempt}/{budget} failed: "
                f"{self.last_error!r}; next attempt in {wait_seconds:.1f}s"
            )
        else:
            reason = (
                f"step '{self.spec.name}' attempt {attempt + 1}/{budget} is not due yet; "
                f"next attempt in {wait_seconds:.1f}s"
            )
        # A failure's retry is news (INFO); a delivery before the attempt is due is not.
        return RescheduleWorkflow(wait_seconds, reason, routine=self.last_error is None)

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """One attempt: the step context is set while the body runs (``DBOS.step_id``,
        ``DBOS.get_context()``); an exception is a failed attempt (recorded, and raised
        once no attempt is left); otherwise ``value`` is recorded."""
        workflow = self.workflow
        if workflow is not None:
            # After a PostgreSQL restart, the sweep may start another execution of the
            # workflow: one that knows its fence lost stops before the step, not after.
            with checkpoints.system_database_failure_reschedules():
                workflow.execution.check_fence(
                    lambda: f"running step {self.function_id} of {workflow.workflow_id}"
                )
        started = now_epoch_ms()
        if self.first_started_at_epoch_ms is None:
            self.first_started_at_epoch_ms = started
        self._attempt_started_at_epoch_ms = started
        workflow_id = workflow.workflow_id if workflow else None
        token = current_step.set(
            StepContext(
                name=self.spec.name,
                workflow_id=workflow_id,
                step_id=self.function_id,
                attempt=self.attempts_made + 1,
                max_attempts=self.spec.policy.attempts_allowed,
                authenticated_user=workflow.authenticated_user if workflow else None,
            )
        )
        # The workflow code's SetWorkflowID names its next workflow, not one the step
        # starts or forks (as in DBOS); a SetWorkflowID inside the step still does.
        hidden = next_workflow_id.set(None)
        try:
            probe = instrumentation.probe
            if probe is None:
                yield from self._attempting(token)
                return
            observed = probe.step_started(
                workflow_id, self.spec.name, self.function_id, self.attempts_made + 1
            )
            try:
                outcome = yield from self._attempting(token)
            except BaseException as error:
                observed.end("error", error)
                raise
            observed.end(outcome, self.last_error if outcome == "retry" else None)
        finally:
            next_workflow_id.reset(hidden)

    def _attempting(self, token: Token[StepContext | None]) -> Generator[None, None, StepOutcome]:
        """The body of :meth:`attempt`; returns the attempt's outcome (or raises)."""
        try:
            yield
        except Exception as error:
            current_step.reset(token)
            self._failed(error)
            return "retry"
        except BaseException:
            current_step.reset(token)
            raise
        current_step.reset(token)
        self._succeeded()
        return "success"

    def _succeeded(self) -> None:
        self.attempts_made += 1
        self.finished = True
        if self.workflow is None:
            return
        try:
            output = self.workflow.serializer.dumps(self.value)
        except DBOSSerializationError as error:
            self._record(error=error, final=True)
            raise
        self._record(output=output, final=True)

    def _failed(self, error: Exception) -> None:
        """Records a failed attempt; raises the final error when no attempt is left."""
        self.attempts_made += 1
        self.last_error = error
        self.attempt_log.append(
            {
                "started_at_epoch_ms": self._attempt_started_at_epoch_ms,
                "completed_at_epoch_ms": now_epoch_ms(),
                "error": error,
            }
        )
        policy = self.spec.policy
        verdict, self.verdict = self.verdict, None
        if not (policy.retries(error) if verdict is None else verdict):
            self._record(error=error, final=True)
            raise error
        if self.attempts_made >= policy.max_attempts:
            errors: list[BaseException] = [entry["error"] for entry in self.attempt_log]
            final = DBOSMaxStepRetriesExceeded(self.spec.name, policy.max_attempts, errors)
            self._record(error=final, final=True)
            raise final from error
        delay = policy.delay_after(self.attempts_made)
        self.due_at_epoch_ms = now_epoch_ms() + round(delay * 1000)
        logger.warning(
            "Workflow %s step '%s' attempt %d/%d failed: %r; next attempt in %.1fs",
            self.workflow.workflow_id if self.workflow else "-",
            self.spec.name,
            self.attempts_made,
            policy.attempts_allowed,
            error,
            delay,
        )
        self._record(final=False)

    def _record(
        self, *, output: str | None = None, error: BaseException | None = None, final: bool
    ) -> None:
        workflow = self.workflow
        if workflow is None:
            return
        assert self.function_id is not None and self.first_started_at_epoch_ms is not None
        serializer = workflow.serializer
        now = now_epoch_ms()
        # A first-try success carries no log: its one attempt is (started, completed).
        log = self.attempt_log if self.attempt_log else None
        if log is not None and final and error is None:
            log = [
                *log,
                {
                    "started_at_epoch_ms": self._attempt_started_at_epoch_ms,
                    "completed_at_epoch_ms": now,
                    "error": None,
                },
            ]
        record = StepRecord(
            function_id=self.function_id,
            function_name=self.spec.name,
            output=output,
            error=serializer.dumps(error) if error is not None else None,
            attempts=self.attempts_made,
            attempt_log=serializer.dumps(log) if log is not None else None,
            retry_due_at_epoch_ms=None if final else self.due_at_epoch_ms,
            started_at_epoch_ms=self.first_started_at_epoch_ms,
            completed_at_epoch_ms=now if final else None,
            max_attempts=self.spec.policy.attempts_allowed,
        )
        checkpoints.record(workflow, record)


def run_step(
    spec: StepSpec,
    fn: Callable[..., Any],
    args: Any,
    kwargs: Any,
    *,
    function_id: int | None = None,
) -> Any:
    """Calls a synchronous step with checkpointing and retries (at ``function_id`` when
    one was reserved, else at the workflow's next one)."""
    if current_step.get() is not None:
        return fn(*args, **kwargs)  # A step inside a step is a plain call.
    if inspect.iscoroutinefunction(spec.policy.should_retry):
        raise DBOSException(
            f"Step {spec.name} is sync but should_retry is async. "
            "Use an async step to pair with an async validator."
        )
    run = StepRun(spec, current_workflow.get(), function_id)
    while not run.finished:
        if (wait := run.wait_in_process()) > 0:
            time.sleep(wait)
        with run.attempt():
            run.value = fn(*args, **kwargs)
    return run.result()


async def run_step_async(
    spec: StepSpec,
    fn: Callable[..., Awaitable[Any]],
    args: Any,
    kwargs: Any,
    *,
    function_id: int | None = None,
) -> Any:
    """Calls an ``async def`` step with checkpointing and retries.

    The step id is taken before the first ``await``, so that steps started together
    (``asyncio.gather``) take ids in the order they were called. In a workflow, each
    attempt of a step with ``timeout_seconds`` or ``preemptible`` is supervised (a
    fresh timeout per attempt; a timeout is a failed attempt, retried by the policy).
    """
    if current_step.get() is not None:
        return await fn(*args, **kwargs)
    workflow = current_workflow.get()
    run = StepRun(spec, workflow, function_id)
    while not run.finished:
        if (wait := run.wait_in_process()) > 0:
            await asyncio.sleep(wait)
        with run.attempt():
            try:
                if workflow is not None and spec.supervised:
                    run.value = await step_supervision.supervise(
                        workflow,
                        spec.name,
                        lambda: fn(*args, **kwargs),
                        preemptible=spec.preemptible,
                        timeout_seconds=spec.timeout_seconds,
                    )
                else:
                    run.value = await fn(*args, **kwargs)
            except Exception as error:
                run.verdict = await _should_retry(spec, error)
                raise
    return run.result()


async def _should_retry(spec: StepSpec, error: Exception) -> bool | None:
    """An async step's retry validator's verdict on ``error``, awaited when it is an
    ``async def`` (as DBOS pairs async validators with async steps); None: no
    validator to await (the policy decides)."""
    policy = spec.policy
    if policy.should_retry is None or not policy.retries_allowed:
        return None
    verdict = policy.should_retry(error)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)
