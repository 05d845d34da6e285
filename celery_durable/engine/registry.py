"""The workflows this process knows, by name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery_durable.engine.classes import ClassRegistry, Membership
from celery_durable.error import DBOSException

DEFAULT_MAX_RECOVERY_ATTEMPTS = 100


@dataclass(frozen=True, kw_only=True)
class WorkflowSpec:
    """A registered workflow: its name is also its Celery task name."""

    name: str
    function: Callable[..., Any]
    is_async: bool
    max_recovery_attempts: int
    # Filled in by @DBOS.dbos_class when the workflow is a method (shared by copies).
    membership: Membership = field(default_factory=Membership)
    # @DBOS.workflow(serialization_type=PORTABLE): inputs, output and error portable.
    portable: bool = False
    # @DBOS.workflow(validate_args=...): (args, kwargs) -> (args, kwargs), run on the
    # inputs before each execution (an error there is the workflow's error).
    validate_args: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None = None


class Registry:
    """Thread-safe name -> workflow map; listeners hear of every registration."""

    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowSpec] = {}
        self._listeners: list[Callable[[WorkflowSpec], None]] = []
        self._lock = threading.Lock()
        # Methods' receivers (see engine/classes.py), registered as the workflows are.
        self.classes = ClassRegistry()

    def register(self, spec: WorkflowSpec) -> None:
        """Registers a workflow.

        Raises:
            DBOSException: another function already uses this name.
        """
        with self._lock:
            existing = self._workflows.get(spec.name)
            if existing is not None and not _same_function(existing.function, spec.function):
                raise DBOSException(
                    f"Workflow name {spec.name!r} is already registered by "
                    f"{existing.function.__module__}.{existing.function.__qualname__}; "
                    "pass a distinct name to @DBOS.workflow(name=...)"
                )
            self._workflows[spec.name] = spec
            listeners = list(self._listeners)
        for listener in listeners:
            listener(spec)

    def get(self, name: str) -> WorkflowSpec | None:
        return self._workflows.get(name)

    def all(self) -> list[WorkflowSpec]:
        with self._lock:
            return list(self._workflows.values())

    def clear(self) -> None:
        """Forgets every workflow (``DBOS.destroy(destroy_registry=True)``); listeners
        stay subscribed."""
        with self._lock:
            self._workflows.clear()

    def subscribe(self, listener: Callable[[WorkflowSpec], None]) -> None:
        """Calls ``listener`` for every workflow registered now and later."""
        with self._lock:
            self._listeners.append(listener)
            current = list(self._workflows.values())
        for spec in current:
            listener(spec)


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # A re-import (or a function redefined under the same qualified name) replaces.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)
