"""What ``@DBOS.workflow``, ``@DBOS.step`` and ``@DBOS.transaction`` build.

Each decorator keeps the function's signature (``ParamSpec``) and wraps it in a sync or
``async`` wrapper that hands the call to the engine. The facade supplies its service
lazily: decorators run at import time, before ``DBOS(...)`` may be configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from celery_durable.core.retry import RetryPolicy
from celery_durable.engine import children_and_sleep
from celery_durable.engine.context import assumed_role, current_roles, in_workflow_code
from celery_durable.engine.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, Registry, WorkflowSpec
from celery_durable.engine.steps import StepSpec, run_step, run_step_async
from celery_durable.engine.transactions import (
    TransactionSpec,
    run_transaction,
    run_transaction_async,
)
from celery_durable.error import DBOSException, DBOSNotAuthorizedError
from celery_durable.service.direct_calls import DirectCalls
from celery_durable.service.signatures import WorkflowFunction, add_signature_methods
from celery_durable.service.step_calls import step_spec
from celery_durable.service.temp_workflows import (
    TEMP_WORKFLOW_ATTRIBUTE,
    register_temp_workflow,
    temp_workflow_of,
)
from celery_durable.service.validation import (
    ValidateArgs,
    resolve_validate_args,
    workflow_options,
)
from celery_durable.store.application import ISOLATION_LEVELS, ApplicationStore

P = ParamSpec("P")
R = TypeVar("R")

WORKFLOW_ATTRIBUTE = "__celery_durable_workflow__"
# "step" or "transaction" on what those decorators return (for clearer errors).
OPERATION_ATTRIBUTE = "__celery_durable_operation__"
# The roles @DBOS.required_roles requires, on what it returns (and what wraps that).
ROLES_ATTRIBUTE = "__celery_durable_required_roles__"
# DBOS's name for the registered name of a workflow or step, on its function.
DBOS_NAME_ATTRIBUTE = "dbos_function_name"


def spec_of(workflow: Callable[..., Any]) -> WorkflowSpec:
    """The workflow a ``@DBOS.workflow()`` function declares, or the temporary workflow
    a ``@DBOS.step()`` or ``@DBOS.transaction()`` runs as when it is started
    (:mod:`~celery_durable.service.temp_workflows`).

    Raises:
        DBOSException: ``workflow`` is none of these.
    """
    spec = getattr(workflow, WORKFLOW_ATTRIBUTE, None)
    if isinstance(spec, WorkflowSpec):
        return spec
    temporary = temp_workflow_of(workflow)
    if temporary is not None:
        return temporary
    label = getattr(workflow, "__qualname__", repr(workflow))
    raise DBOSException(
        f"{label} is not a workflow: decorate it with @DBOS.workflow() (or @DBOS.step()) "
        "to start it"
    )


class Decorator(Protocol):
    """What ``@DBOS.workflow()`` and friends return: keeps the function's signature."""

    def __call__(self, function: Callable[P, R], /) -> Callable[P, R]: ...


F = TypeVar("F", bound=Callable[..., Any])


class SameTypeDecorator(Protocol):
    """What ``@DBOS.required_roles()`` returns: keeps the type of what it decorates (a
    workflow keeps its ``s``, ``si`` and ``signature``)."""

    def __call__(self, function: F, /) -> F: ...


class WorkflowDecorator(Protocol):
    """What ``@DBOS.workflow()`` returns: keeps the function's signature and adds
    Celery's ``s``, ``si`` and ``signature`` (:class:`WorkflowFunction`)."""

    def __call__(self, function: Callable[P, R], /) -> WorkflowFunction[P, R]: ...


def declare_workflow(
    registry: Registry,
    service: Callable[[], DirectCalls],
    name: str | None,
    max_recovery_attempts: int | None,
    *,
    serialization_type: object = None,
    validate_args: ValidateArgs | None = None,
    auto_upgrade: bool | None = None,
) -> WorkflowDecorator:
    """``@DBOS.workflow(...)``: validates the options, then registers each function."""
    portable = workflow_options(serialization_type, auto_upgrade)
    if max_recovery_attempts is not None and (
        not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0
    ):
        raise ValueError(
            f"max_recovery_attempts must be an integer >= 0, not {max_recovery_attempts!r}"
        )

    def decorator(function: Callable[P, R]) -> WorkflowFunction[P, R]:
        spec = WorkflowSpec(
            name=name or function.__qualname__,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
            max_recovery_attempts=(
                DEFAULT_MAX_RECOVERY_ATTEMPTS
                if max_recovery_attempts is None
                else max_recovery_attempts
            ),
            portable=portable,
        )
        validator = resolve_validate_args(validate_args, function, spec)
        spec = dataclasses.replace(spec, validate_args=validator)
        registry.register(spec)
        return cast(WorkflowFunction[P, R], workflow_wrapper(spec, function, service))

    return decorator


def declare_step(
    registry: Registry,
    name: str | None,
    policy: RetryPolicy,
    preemptible: bool = False,
    timeout_seconds: float | None = None,
) -> Decorator:
    """``@DBOS.step(...)``; DBOS 3.4's ``preemptible`` and ``timeout_seconds`` are
    checked when a function is decorated (``async def`` only, as in DBOS). The step's
    temporary workflow (``<temp>.<name>``) is registered with it."""

    def decorator(function: Callable[P, R]) -> Callable[P, R]:
        spec = step_spec(
            function,
            name=name,
            policy=policy,
            preemptible=preemptible,
            timeout_seconds=timeout_seconds,
        )
        wrapper = step_wrapper(spec, function)
        register_temp_workflow(registry, spec.name, wrapper)
        return wrapper

    return decorator


def declare_transaction(
    registry: Registry,
    name: str | None,
    isolation_level: str,
    store: Callable[[], ApplicationStore],
) -> Decorator:
    """``@DBOS.transaction(...)``: validates the isolation level first. The
    transaction's temporary workflow (``<temp>.<name>``) is registered with it."""
    if isolation_level not in ISOLATION_LEVELS:
        raise ValueError(
            f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, not {isolation_level!r}"
        )

    def decorator(function: Callable[P, R]) -> Callable[P, R]:
        spec = TransactionSpec(
            name=name or function.__qualname__, isolation_level=isolation_level, store=store
        )
        wrapper = transaction_wrapper(spec, function)
        register_temp_workflow(registry, spec.name, wrapper)
        return wrapper

    return decorator


def declare_required_roles(registry: Registry, roles: list[str]) -> SameTypeDecorator:
    """``@DBOS.required_roles(roles)`` on a workflow, a step or any function: the caller
    must have one of ``roles`` (``DBOSContextSetAuth``), which it assumes while the
    function runs.

    Above ``@DBOS.workflow()`` the check runs where the workflow is called (a direct
    call or a child call that is refused writes nothing) and again each time it
    executes, before its code: a workflow started or enqueued for a caller without the
    role ends in ERROR with ``DBOSNotAuthorizedError``, as DBOS does.
    """
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise ValueError(f"required_roles takes a list of strings, not {roles!r}")
    required = list(roles)

    def decorator(function: F) -> F:
        spec = getattr(function, WORKFLOW_ATTRIBUTE, None)
        name = function.__qualname__
        if isinstance(spec, WorkflowSpec):
            name = spec.name
            spec = dataclasses.replace(spec, function=_role_checked(spec.function, required, name))
            registry.replace(spec)  # executions run the checked function
        wrapper = _role_checked(function, required, name)
        if isinstance(spec, WorkflowSpec):
            setattr(wrapper, WORKFLOW_ATTRIBUTE, spec)
        temporary = temp_workflow_of(function)
        if temporary is not None:
            # A step started as a workflow checks the roles as it executes, as in DBOS.
            temporary = dataclasses.replace(
                temporary, function=_role_checked(temporary.function, required, name)
            )
            registry.replace(temporary)
            setattr(wrapper, TEMP_WORKFLOW_ATTRIBUTE, temporary)
        return cast(F, wrapper)

    return decorator


def check_required_roles(required: list[str], name: str) -> str | None:
    """The role the running code assumes to call ``name``: the first of ``required``
    granted to it (None when nothing is required). DBOS's check and messages.

    Raises:
        DBOSNotAuthorizedError: none of ``required`` is granted, or no roles are known.
    """
    if not required:
        return None
    granted = current_roles()
    if granted is None:
        raise DBOSNotAuthorizedError(
            f"Function {name} requires a role, but was called in a context without "
            "authentication information"
        )
    for role in required:
        if role in granted:
            return role
    raise DBOSNotAuthorizedError(
        f"Function {name} has required roles, but user is not authenticated for any of them"
    )


@contextlib.contextmanager
def _assuming(role: str | None) -> Iterator[None]:
    if role is None:
        yield
        return
    token = assumed_role.set(role)
    try:
        yield
    finally:
        assumed_role.reset(token)


def _role_checked(function: Callable[P, R], required: list[str], name: str) -> Callable[P, R]:
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _assuming(check_required_roles(required, name)):
                return await function(*args, **kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(function)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _assuming(check_required_roles(required, name)):
                return function(*args, **kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, ROLES_ATTRIBUTE, required)
    return cast(Callable[P, R], wrapper)


def workflow_wrapper(
    spec: WorkflowSpec, function: Callable[P, R], service: Callable[[], DirectCalls]
) -> Callable[P, R]:
    """The callable ``@DBOS.workflow`` returns.

    Called from another workflow's code it runs as that workflow's child (and the parent
    waits without holding a worker slot); otherwise it is a direct call, run to its end
    in this process. Its ``s``, ``si`` and ``signature`` are its Celery task's, for a
    chain, group or chord (:mod:`~celery_durable.service.signatures`).
    """
    wrapper: Callable[..., Any]
    if spec.is_async:

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            parent = in_workflow_code()
            if parent is not None:
                return children_and_sleep.call_child(parent, spec, args, kwargs)
            return await service().call_async(spec, args, kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(function)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            parent = in_workflow_code()
            if parent is not None:
                return children_and_sleep.call_child(parent, spec, args, kwargs)
            return service().call(spec, args, kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, WORKFLOW_ATTRIBUTE, spec)
    _name_as_dbos(spec.name, function, wrapper)
    add_signature_methods(wrapper, spec, service)
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
    setattr(wrapper, OPERATION_ATTRIBUTE, "step")
    _name_as_dbos(spec.name, function, wrapper)
    return cast(Callable[P, R], wrapper)


def _name_as_dbos(name: str, function: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    """DBOS's ``dbos_function_name`` attribute (the registered name), on the decorated
    function and on what decorating it returns, as DBOS sets it on both."""
    for named in (function, wrapper):
        with contextlib.suppress(AttributeError, TypeError):  # a builtin, a slotted callable
            setattr(named, DBOS_NAME_ATTRIBUTE, name)


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
    setattr(wrapper, OPERATION_ATTRIBUTE, "transaction")
    return cast(Callable[P, R], wrapper)
