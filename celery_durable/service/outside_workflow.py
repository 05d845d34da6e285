"""A client's calls never take part in the workflow that happens to call them.

DBOS's client reads and writes through its own system database, which knows nothing of
the calling workflow: ``client.read_stream`` inside a workflow records no operation,
``client.enqueue`` starts no child. Ours shares the machinery that records workflow
code's reads, so :func:`outside_workflow_code` runs each public method of the client
(and each value an iterator method yields) with no running workflow in the context,
and its service makes handles that do the same.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from celery_durable.engine.context import current_step, current_workflow
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.workflows import WorkflowService

C = TypeVar("C", bound=type)


@contextlib.contextmanager
def _no_workflow() -> Iterator[None]:
    workflow, step = current_workflow.set(None), current_step.set(None)
    try:
        yield
    finally:
        current_step.reset(step)
        current_workflow.reset(workflow)


def _iterated_outside(values: Iterator[Any]) -> Iterator[Any]:
    while True:
        with _no_workflow():
            try:
                value = next(values)
            except StopIteration:
                return
        yield value


async def _async_iterated_outside(values: AsyncIterator[Any]) -> AsyncIterator[Any]:
    while True:
        with _no_workflow():
            try:
                value = await anext(values)
            except StopAsyncIteration:
                return
        yield value


def _outside(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def awaited(*args: Any, **kwargs: Any) -> Any:
            with _no_workflow():
                return await method(*args, **kwargs)

        return awaited

    @functools.wraps(method)
    def called(*args: Any, **kwargs: Any) -> Any:
        with _no_workflow():
            result = method(*args, **kwargs)
        if inspect.isgenerator(result):
            return _iterated_outside(result)
        if inspect.isasyncgen(result):
            return _async_iterated_outside(result)
        return result

    return called


def outside_workflow_code(cls: C) -> C:
    """Wraps every public method ``cls`` has (its own and its bases') in place."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(cls, name)
        if inspect.isfunction(attribute):
            setattr(cls, name, _outside(attribute))
    return cls


@outside_workflow_code
class OutsideWorkflowHandle(WorkflowHandle[Any]):
    """A client's handle: its reads and waits are never a workflow's operations."""


@outside_workflow_code
class OutsideWorkflowHandleAsync(WorkflowHandleAsync[Any]):
    """A client's async handle: its reads and waits are never a workflow's operations."""


class ClientWorkflowService(WorkflowService):
    """A client's service: the handles it makes are :class:`OutsideWorkflowHandle`."""

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        process = self.runtime.process
        return OutsideWorkflowHandle(workflow_id, process.store, process.serializer)

    def handle_async(self, workflow_id: str) -> WorkflowHandleAsync[Any]:
        process = self.runtime.process
        return OutsideWorkflowHandleAsync(workflow_id, process.store, process.serializer)
