"""Steps run by call rather than by decorator, as DBOS 3.4 runs them: ``DBOS.run_step``,
``DBOS.run_step_async`` and ``DBOS.reserve_step`` (a step id drawn now, run later).

They are the decorator's step (:mod:`celery_durable.engine.steps`): checkpointed in a
workflow, retried by the options' policy, a plain call outside any workflow.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from celery_durable.core.retry import RetryPolicy
from celery_durable.engine import step_supervision
from celery_durable.engine.context import WorkflowContext, current_step, current_workflow
from celery_durable.engine.steps import StepSpec, run_step_async
from celery_durable.engine.steps import run_step as run_sync_step
from celery_durable.error import DBOSException
from celery_durable.service.event_loops import refuse_running_loop


class StepOptions(TypedDict, total=False):
    """A step's options (DBOS 3.4's ``StepOptions``), each optional.

    Attributes:
        name: Defaults to the function's ``__qualname__``.
        retries_allowed: Default True (our specification; DBOS 3.x defaults to False).
        interval_seconds: Default 1.0.
        max_attempts: Default 3.
        backoff_rate: Default 2.0.
        should_retry: Called with a failed attempt's exception; False stops retrying.
        preemptible: An ``async def`` step stops when its workflow is cancelled.
        timeout_seconds: An ``async def`` step's attempt running longer fails with
            ``DBOSStepTimeoutError`` (retried by the policy).
    """

    name: str | None
    retries_allowed: bool
    interval_seconds: float
    max_attempts: int
    backoff_rate: float
    should_retry: Callable[[Exception], bool] | None
    preemptible: bool
    timeout_seconds: float | None


_KNOWN = frozenset(StepOptions.__annotations__)


def step_spec(
    function: Callable[..., Any],
    *,
    name: str | None,
    policy: RetryPolicy,
    preemptible: bool = False,
    timeout_seconds: float | None = None,
) -> StepSpec:
    """The step a decorator or a call declares, its DBOS 3.4 options checked.

    Raises:
        DBOSException: ``preemptible`` or ``timeout_seconds`` on a synchronous function,
            or a timeout that is not positive and finite.
    """
    step_name = str(name or getattr(function, "__qualname__", repr(function)))
    step_supervision.check_options(
        step_name, inspect.iscoroutinefunction(function), preemptible, timeout_seconds
    )
    return StepSpec(
        name=step_name, policy=policy, preemptible=preemptible, timeout_seconds=timeout_seconds
    )


def spec_from_options(options: StepOptions | None, function: Callable[..., Any]) -> StepSpec:
    given: dict[str, Any] = dict(options or {})
    unknown = sorted(set(given) - _KNOWN)
    if unknown:
        raise DBOSException(f"Unknown step options {unknown}; StepOptions has {sorted(_KNOWN)}")
    policy = RetryPolicy(
        retries_allowed=given.get("retries_allowed", True),
        max_attempts=given.get("max_attempts", 3),
        interval_seconds=given.get("interval_seconds", 1.0),
        backoff_rate=given.get("backoff_rate", 2.0),
        should_retry=given.get("should_retry"),
    )
    return step_spec(
        function,
        name=given.get("name"),
        policy=policy,
        preemptible=bool(given.get("preemptible", False)),
        timeout_seconds=given.get("timeout_seconds"),
    )


def run_step(
    options: StepOptions | None,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    function_id: int | None = None,
) -> Any:
    """Runs ``function`` as a step (an ``async def`` one to its end in this thread)."""
    refuse_running_loop("run_step")
    spec = spec_from_options(options, function)
    if inspect.iscoroutinefunction(function):
        return asyncio.run(run_step_async(spec, function, args, kwargs, function_id=function_id))
    return run_sync_step(spec, function, args, kwargs, function_id=function_id)


async def run_step_in_loop(
    options: StepOptions | None,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    function_id: int | None = None,
) -> Any:
    """``run_step`` for async callers: a synchronous function runs in a thread."""
    spec = spec_from_options(options, function)
    if inspect.iscoroutinefunction(function):
        return await run_step_async(spec, function, args, kwargs, function_id=function_id)
    if current_workflow.get() is not None and function_id is None:
        # Take the step id before the thread starts, in call order (as gather expects).
        workflow = current_workflow.get()
        assert workflow is not None
        if current_step.get() is None:
            function_id = workflow.next_function_id()
    return await asyncio.to_thread(
        run_sync_step, spec, function, args, kwargs, function_id=function_id
    )


@dataclass(frozen=True)
class ReservedStep:
    """The workflow execution that drew a step id, and the id."""

    workflow: WorkflowContext
    function_id: int


class StepReservation:
    """A step id drawn by ``DBOS.reserve_step``, run once later, in the workflow that
    reserved it, with :meth:`run` or :meth:`run_async` (as in DBOS 3.4). A reservation
    never run leaves a gap in the step ids."""

    def __init__(self, step_ctx: ReservedStep) -> None:
        self._workflow = step_ctx.workflow
        self._function_id = step_ctx.function_id
        self._used = False

    @property
    def step_id(self) -> int:
        """The reserved step id."""
        return self._function_id

    def _claim(self) -> None:
        if self._used:
            raise DBOSException("A step reservation can only be run once")
        running = current_workflow.get()
        if running is not self._workflow or running.ended or current_step.get() is not None:
            raise DBOSException(
                f"Step {self._function_id} was reserved in workflow "
                f"{self._workflow.workflow_id} and must be run from that workflow, "
                "outside any step"
            )
        self._used = True

    def run(
        self,
        dbos_step_options: StepOptions | None,
        func: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Runs ``func`` as the step at the reserved id and checkpoints its result."""
        refuse_running_loop("run")
        self._claim()
        return run_step(dbos_step_options, func, args, kwargs, function_id=self._function_id)

    async def run_async(
        self,
        dbos_step_options: StepOptions | None,
        func: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``run`` for async callers."""
        self._claim()
        return await run_step_in_loop(
            dbos_step_options, func, args, kwargs, function_id=self._function_id
        )


def reserve_step() -> StepReservation:
    """Draws the running workflow's next step id now.

    Raises:
        DBOSException: outside workflow code, or in a step.
    """
    workflow = current_workflow.get()
    if workflow is None or current_step.get() is not None:
        raise DBOSException(
            "DBOS.reserve_step must be called from a workflow, outside any step or transaction"
        )
    return StepReservation(ReservedStep(workflow, workflow.next_function_id()))
