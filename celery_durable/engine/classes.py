"""Workflows that are methods: the object a call is bound to, recorded and found again.

A workflow's row holds its inputs, not Python objects, so a method's receiver is
recorded by name, as DBOS records it: an instance method's by ``(class_name,
config_name)`` (a ``DBOSConfiguredInstance``), a class method's by ``class_name``. The
names travel inside the serialized inputs (``{"args", "kwargs", "receiver"}``), so
every path that copies a workflow's inputs (recovery, resume, fork, a child, a queue)
keeps them without a column or a statement of its own. The process that executes the
workflow finds the receiver again in its :class:`ClassRegistry`: the classes and
instances its modules created at import time, as DBOS requires.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from celery_durable.error import DBOSException, DBOSWorkflowFunctionNotFoundError

MethodKind = Literal["function", "instance", "class", "static"]

# Where the registered name of a @DBOS.dbos_class class is kept (on the class itself).
CLASS_NAME_ATTRIBUTE = "__celery_durable_class_name__"


class Membership:
    """What ``@DBOS.dbos_class`` learns of a workflow defined in a class body.

    A workflow decorator runs before its class exists, so the workflow starts as a
    plain ``function`` and the class decorator fills this in later; it is shared by
    every copy of the workflow's spec.
    """

    def __init__(self) -> None:
        self.kind: MethodKind = "function"
        # The class whose body defines the method (set with ``kind``).
        self.owner: type | None = None

    @property
    def class_name(self) -> str | None:
        """DBOS's ``workflow_class_name`` of a class method: its class's registered
        name (None for any other workflow)."""
        if self.kind != "class" or self.owner is None:
            return None
        return registered_class_name(self.owner)


@dataclass(frozen=True, kw_only=True)
class Receiver:
    """The recorded name of a method's receiver: a class, or one configured instance."""

    class_name: str
    config_name: str | None

    def encode(self) -> list[str | None]:
        return [self.class_name, self.config_name]

    @staticmethod
    def decode(recorded: Any) -> Receiver:
        class_name, config_name = recorded
        return Receiver(class_name=str(class_name), config_name=config_name)


def registered_class_name(cls: type) -> str:
    """The name ``@DBOS.dbos_class`` gave ``cls`` (its ``__qualname__`` if none)."""
    name = cls.__dict__.get(CLASS_NAME_ATTRIBUTE)
    return name if isinstance(name, str) else cls.__qualname__


def split_receiver(
    membership: Membership, function: Callable[..., Any], args: tuple[Any, ...]
) -> tuple[Receiver | None, tuple[Any, ...]]:
    """Separates a method call's receiver from the arguments to record.

    Raises:
        DBOSException: the call's receiver cannot be recorded: an instance without a
            ``config_name``, or a method of a class without ``@DBOS.dbos_class`` (the
            messages are DBOS's).
    """
    kind = membership.kind
    if kind == "instance" and args:
        instance = args[0]
        config_name = getattr(instance, "config_name", None)
        if not isinstance(config_name, str):
            raise DBOSException(
                "Function target appears to be a class instance, but does not have "
                "`config_name` set"
            )
        class_name = registered_class_name(type(instance))
        return Receiver(class_name=class_name, config_name=config_name), args[1:]
    if kind == "class" and args and isinstance(args[0], type):
        return Receiver(class_name=registered_class_name(args[0]), config_name=None), args[1:]
    if kind == "function" and args:
        _refuse_unregistered_method(function, args[0])
    return None, args


def _refuse_unregistered_method(function: Callable[..., Any], first: Any) -> None:
    """DBOS's guard against a workflow method in a class missing ``@DBOS.dbos_class``."""
    if isinstance(first, type):
        raise DBOSException("Function target appears to be a class, but is not properly registered")
    if _first_parameter(function) == "self":
        raise DBOSException(
            "Function target appears to be a class instance, but is not properly registered"
        )


@functools.lru_cache(maxsize=4096)
def _first_parameter(function: Callable[..., Any]) -> str | None:
    # Once per workflow function, not on every start (inspect.signature is slow).
    return next(iter(inspect.signature(function).parameters), None)


class ClassRegistry:
    """The ``@DBOS.dbos_class`` classes and configured instances of this process."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._instances: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def register_class(self, cls: type, class_name: str) -> None:
        """Raises:
        Exception: another class has this name (a plain ``Exception`` with DBOS's
            message, as DBOS raises it)."""
        with self._lock:
            existing = self._classes.get(class_name)
            if existing is not None and existing is not cls:
                raise Exception(f"Duplicate type registration for class '{class_name}'")
            self._classes[class_name] = cls

    def register_instance(self, instance: object, config_name: str) -> None:
        """Raises:
        Exception: another instance of the class has this ``config_name`` (as DBOS)."""
        class_name = registered_class_name(type(instance))
        with self._lock:
            key = (class_name, config_name)
            existing = self._instances.get(key)
            if existing is not None and existing is not instance:
                raise Exception(
                    f"Duplicate instance registration for class '{class_name}' "
                    f"instance '{config_name}'"
                )
            self._instances[key] = instance

    def resolve(self, workflow_id: str, receiver: Receiver) -> object:
        """The registered instance (or class) a recorded receiver names.

        Raises:
            DBOSWorkflowFunctionNotFoundError: this process has not created it.
        """
        if receiver.config_name is not None:
            instance = self._instances.get((receiver.class_name, receiver.config_name))
            if instance is None:
                raise DBOSWorkflowFunctionNotFoundError(
                    workflow_id,
                    f"configured class instance '{receiver.class_name}/{receiver.config_name}'"
                    " is not registered (create it when the worker imports its module)",
                )
            return instance
        cls = self._classes.get(receiver.class_name)
        if cls is None:
            raise DBOSWorkflowFunctionNotFoundError(
                workflow_id, f"class '{receiver.class_name}' is not registered"
            )
        return cls
