"""The workflows this process knows, by name."""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery_durable.engine.classes import ClassRegistry, Membership
from celery_durable.error import DBOSException

DEFAULT_MAX_RECOVERY_ATTEMPTS = 100
# DBOS's prefix of a temporary workflow's name: a step started as a workflow.
TEMP_PREFIX = "<temp>."
# DBOS's logger, where DBOS warns of a name registered twice.
logger = logging.getLogger("dbos")


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
    # A step or transaction started as a workflow (DBOS's ``<temp>.<name>``, see
    # service/temp_workflows.py): its one operation is the step.
    temporary: bool = False


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
            DBOSException: another function, from another module, already uses this
                name (a temporary workflow's name only warns).
        """
        with self._lock:
            existing = self._workflows.get(spec.name)
            if existing is not None and existing.function is not spec.function:
                if spec.temporary:
                    # As DBOS: a step's name may repeat across modules; the last wins.
                    warn_duplicate(spec.name.removeprefix(TEMP_PREFIX))
                else:
                    _check_reregistration(spec.name, existing.function, spec.function)
        self.replace(spec)

    def replace(self, spec: WorkflowSpec) -> None:
        """Registers a workflow in place of its own earlier registration, without the
        duplicate check: a decorator above ``@DBOS.workflow()`` (``required_roles``)
        wrapping what executions run."""
        with self._lock:
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
        """Forgets every workflow, steps' temporary ones included
        (``DBOS.destroy(destroy_registry=True)``); listeners stay subscribed."""
        with self._lock:
            self._workflows.clear()

    def subscribe(self, listener: Callable[[WorkflowSpec], None]) -> None:
        """Calls ``listener`` for every workflow registered now and later."""
        with self._lock:
            self._listeners.append(listener)
            current = list(self._workflows.values())
        for spec in current:
            listener(spec)


def _check_reregistration(
    name: str, previous: Callable[..., Any], current: Callable[..., Any]
) -> None:
    """As DBOS: a name registered again from the same module or source file (a reload,
    a file imported under two names, a function redefined) replaces the first, with a
    warning; from another module and file, it raises: a name is what recovery runs.

    Raises:
        DBOSException: two different functions claim the name.
    """
    before, after = _code_origin(previous), _code_origin(current)
    if before and after and before[0] != after[0] and before[1] != after[1]:
        raise DBOSException(
            f"Operation (Name: {name}) is registered by two different functions, "
            f"{before[0]} at {before[1]} and {after[0]} at {after[1]}; pass a distinct "
            "name to @DBOS.workflow(name=...)"
        )
    warn_duplicate(name)


def warn_duplicate(name: str) -> None:
    """DBOS's warning for a function name registered twice."""
    logger.warning(
        f"Duplicate registration of function {name!r}. A function named {name!r} has "
        "already been registered. All functions registered with DBOS must have unique "
        "names."
    )


def _code_origin(function: Callable[..., Any]) -> tuple[str, str] | None:
    """Where a function came from: (module, real source path)."""
    try:
        function = inspect.unwrap(function)
    except ValueError:
        return None
    code = getattr(function, "__code__", None)
    module = getattr(function, "__module__", None)
    if code is None or module is None:
        return None
    return module, os.path.realpath(code.co_filename)
