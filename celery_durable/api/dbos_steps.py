"""The ``DBOS`` facade's steps by call (a part of ``DBOS``), as DBOS 3.4 has them:
``run_step``, ``run_step_async`` and ``reserve_step``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast, overload

from celery_durable.service import step_calls
from celery_durable.service.step_calls import StepOptions, StepReservation

P = ParamSpec("P")
R = TypeVar("R")


class WorkflowSteps:
    """``DBOS.run_step``, ``DBOS.run_step_async``, ``DBOS.reserve_step``."""

    @overload
    @classmethod
    def run_step(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    @classmethod
    def run_step(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @classmethod
    def run_step(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, Coroutine[Any, Any, R]] | Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Runs ``func`` as a step with these [StepOptions][celery_durable.StepOptions]
        (as ``@DBOS.step`` would): checkpointed in a workflow, a plain call outside one.
        An ``async def`` function runs to its end here.

        Raises:
            RuntimeError: called while an event loop runs (use ``run_step_async``).
        """
        return cast(R, step_calls.run_step(dbos_step_options, func, args, kwargs))

    @overload
    @classmethod
    async def run_step_async(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    @classmethod
    async def run_step_async(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @classmethod
    async def run_step_async(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[P, Coroutine[Any, Any, R]] | Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """``run_step`` for async callers (a synchronous ``func`` runs in a thread)."""
        return cast(R, await step_calls.run_step_in_loop(dbos_step_options, func, args, kwargs))

    @classmethod
    def reserve_step(cls) -> StepReservation:
        """Draws the running workflow's next step id now, for a step run later at it
        with ``reservation.run(options, func, *args)`` (or ``run_async``), from that
        workflow's code.

        Raises:
            DBOSException: outside workflow code, or in a step.
        """
        return step_calls.reserve_step()
