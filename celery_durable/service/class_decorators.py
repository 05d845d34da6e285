"""``@DBOS.dbos_class`` and ``@DBOS.default_required_roles``: classes whose methods are
workflows, steps or transactions.

A method decorator runs before its class exists, so the class decorator finishes the
job: it registers the class under its name and tells each workflow in the body whether
it is an instance, class or static method (its spec's ``membership``), so that a call
records its receiver by name (:mod:`celery_durable.engine.classes`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from celery_durable.engine.classes import CLASS_NAME_ATTRIBUTE, MethodKind
from celery_durable.engine.registry import Registry, WorkflowSpec
from celery_durable.service.decorators import (
    OPERATION_ATTRIBUTE,
    ROLES_ATTRIBUTE,
    WORKFLOW_ATTRIBUTE,
    declare_required_roles,
)
from celery_durable.service.temp_workflows import temp_workflow_of

C = TypeVar("C", bound=type)


def declare_class(registry: Registry, class_name: str | None) -> Callable[[C], C]:
    """``@DBOS.dbos_class(class_name)``: registers the class under ``class_name``
    (default ``__qualname__``) and marks its workflows' kinds.

    Raises:
        DBOSException: another class is registered under the name.
    """

    def decorator(cls: C) -> C:
        _register(registry, cls, class_name)
        return cls

    return decorator


def declare_default_roles(registry: Registry, roles: list[str]) -> Callable[[C], C]:
    """``@DBOS.default_required_roles(roles)``: ``@DBOS.dbos_class()``, and every
    workflow and step of the class that names no roles of its own requires ``roles``."""
    checked = declare_required_roles(registry, roles)  # validates roles now

    def decorator(cls: C) -> C:
        for name, attribute in list(vars(cls).items()):
            function, rewrap = _unwrapped(attribute)
            if _is_operation(function) and not hasattr(function, ROLES_ATTRIBUTE):
                setattr(cls, name, rewrap(checked(function)))
        _register(registry, cls, None)
        return cls

    return decorator


def with_receiver(workflow: Callable[..., Any], args: Any) -> tuple[Any, ...]:
    """The arguments of a call of ``workflow``: a bound method's receiver (an instance,
    or a class for a class method) comes first, as when the method is called."""
    receiver = getattr(workflow, "__self__", None)
    if inspect.ismethod(workflow) and receiver is not None:
        return (receiver, *args)
    return tuple(args)


def _register(registry: Registry, cls: type, class_name: str | None) -> None:
    name = class_name or cls.__dict__.get(CLASS_NAME_ATTRIBUTE) or cls.__qualname__
    registry.classes.register_class(cls, name)
    setattr(cls, CLASS_NAME_ATTRIBUTE, name)
    for attribute in vars(cls).values():
        function, _ = _unwrapped(attribute)
        kind: MethodKind = "instance"
        if isinstance(attribute, staticmethod):
            kind = "static"
        elif isinstance(attribute, classmethod):
            kind = "class"
        for spec in _workflow_specs(function):
            spec.membership.kind = kind
            spec.membership.owner = cls


def _unwrapped(attribute: Any) -> tuple[Any, Callable[[Any], Any]]:
    """A class attribute's function, and how to wrap a replacement the same way."""
    if isinstance(attribute, staticmethod):
        return attribute.__func__, staticmethod
    if isinstance(attribute, classmethod):
        return attribute.__func__, classmethod
    return attribute, lambda function: function


def _is_operation(function: Any) -> bool:
    return hasattr(function, WORKFLOW_ATTRIBUTE) or hasattr(function, OPERATION_ATTRIBUTE)


def _workflow_specs(function: Any) -> Iterator[WorkflowSpec]:
    """The workflow specs along a decorated function's ``__wrapped__`` chain."""
    while function is not None:
        spec = getattr(function, WORKFLOW_ATTRIBUTE, None)
        if isinstance(spec, WorkflowSpec):
            yield spec
        temporary = temp_workflow_of(function)  # a step's, started as a workflow
        if temporary is not None:
            yield temporary
        function = getattr(function, "__wrapped__", None)
