"""Running a producer's operation outside the workflow that calls it.

DBOS's ``DBOSClient`` talks to its system database on its own: called from workflow
code, its reads (``get_event``, ``read_stream``, ``read_stream_offset``) are not that
workflow's operations, so nothing is recorded and a replay reads again. Here the
client shares the process's context variables with the workflow, so its operations
run in a copy of the context without the running workflow or step.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from celery_durable.engine.context import current_step, current_workflow

P = ParamSpec("P")
T = TypeVar("T")


def _context() -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(current_workflow.set, None)
    context.run(current_step.set, None)
    return context


def run(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` outside any workflow or step."""
    return _context().run(function, *args, **kwargs)


def iterate(make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """The iterator ``make`` returns (made now: its argument errors raise here), each of
    its steps outside any workflow or step (a generator reads the context when it runs,
    not when it is made)."""
    context = _context()
    return _stepped(context, context.run(make))


def _stepped(context: contextvars.Context, values: Iterator[T]) -> Iterator[T]:
    try:
        while True:
            try:
                yield context.run(next, values)
            except StopIteration:
                return
    finally:
        close = getattr(values, "close", None)
        if close is not None:
            context.run(close)


async def wait(coroutine: Coroutine[Any, Any, T]) -> T:
    """Awaits ``coroutine`` outside any workflow or step (as a task in that context)."""
    return await asyncio.create_task(coroutine, context=_context())
