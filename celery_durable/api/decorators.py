"""What ``@DBOS.workflow``, ``@DBOS.step`` and ``@DBOS.transaction`` build.

Each decorator keeps the function's signature (``ParamSpec``) and wraps it in a sync or
``async`` wrapper that hands the call to the engine. The facade supplies the runtime
lazily: decorators run at import time, before ``DBOS(...)`` may be configured.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from celery_durable.engine import waits
from celery_durable.engine.context import in_workflow_code
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.engine.steps import StepSpec, run_step, run_step_async
from celery_durable.engine.transactions import (
    TransactionSpec,
    run_transaction,
    run_transaction_async,
)
from celery_durable.integration.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")

WORKFLOW_ATTRIBUTE = "__celery_durable_workflow__"


def workflow_wrapper(
    spec: WorkflowSpec, function: Callable[P, R], runtime: Callable[[], Runtime]
) -> Callable[P, R]:
    """The callable ``@DBOS.workflow`` returns.

    Called from another workflow's code it runs as that workflow's child (and the parent
    waits without holding a worker slot); otherwise it is a direct call, run to its end
    in this process.
    """
    wrapper: Callable[..., Any]
    if spec.is_async:

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            parent = in_workflow_code()
            if parent is not None:
                return waits.call_child(parent, spec, args, kwargs)
            return await runtime().call_async(spec, args, kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(function)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            parent = in_workflow_code()
            if parent is not None:
                return waits.call_child(parent, spec, args, kwargs)
            return runtime().call(spec, args, kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, WORKFLOW_ATTRIBUTE, spec)
    return cast(Callable[P, R], wrapper)


def step_wrapper(spec: StepSpec, function: Callable[P, R]) -> Callable[P, R]:
    """The callable ``@DBOS.step`` returns."""
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await run_step_async(spec, function, args, kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(function)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_step(spec, function, args, kwargs)

        wrapper = sync_wrapper
    return cast(Callable[P, R], wrapper)


def transaction_wrapper(spec: TransactionSpec, function: Callable[P, R]) -> Callable[P, R]:
    """The callable ``@DBOS.transaction`` returns."""
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await run_transaction_async(spec, function, args, kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(function)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_transaction(spec, function, args, kwargs)

        wrapper = sync_wrapper
    return cast(Callable[P, R], wrapper)
