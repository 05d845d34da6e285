"""Steps and transactions started as workflows: DBOS's temporary workflows.

DBOS lets a program start or enqueue a step (or a transaction) as if it were a
workflow: ``DBOS.start_workflow(my_step, ...)``, ``queue.enqueue(my_step, ...)``,
``DBOS.enqueue_workflow(queue, my_step, ...)``, or a child started so from workflow
code. It runs as a workflow named ``<temp>.<step name>`` whose one operation (step 1)
is the step. As in DBOS, the decorator registers that workflow when it decorates the
function, so every process that imports the step (a Celery worker, the recovery
sweep's) can execute, recover, resume or fork it like any other workflow: the temporary
workflow is durable, not temporary. Its function is the step's own wrapper, which,
called in workflow code, runs and checkpoints the step with its retry policy.

A step called directly outside any workflow is not one of these: it runs in the
calling process and nothing is recorded (as in DBOS, which calls it plainly; our
decorator keeps its retries there too).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from celery_durable.engine.registry import (
    DEFAULT_MAX_RECOVERY_ATTEMPTS,
    TEMP_PREFIX,
    Registry,
    WorkflowSpec,
)
from celery_durable.error import DBOSException

# The temporary workflow's spec, on what ``@DBOS.step`` and ``@DBOS.transaction`` return.
TEMP_WORKFLOW_ATTRIBUTE = "__celery_durable_temp_workflow__"


def register_temp_workflow(
    registry: Registry, operation_name: str, wrapper: Callable[..., Any]
) -> WorkflowSpec:
    """Registers ``wrapper`` (a step's or transaction's) as the workflow
    ``<temp>.<operation_name>`` and marks it startable.

    A second registration of the name (the same step name in two modules, a redefined
    function) replaces the first with DBOS's duplicate warning, never an error: a step
    name need not be unique across modules, as in DBOS.
    """
    spec = WorkflowSpec(
        name=TEMP_PREFIX + operation_name,
        function=wrapper,
        is_async=inspect.iscoroutinefunction(wrapper),
        max_recovery_attempts=DEFAULT_MAX_RECOVERY_ATTEMPTS,
        temporary=True,
    )
    registry.register(spec)
    setattr(wrapper, TEMP_WORKFLOW_ATTRIBUTE, spec)
    return spec


def temp_workflow_of(function: Callable[..., Any]) -> WorkflowSpec | None:
    """The temporary workflow a step or transaction runs as when started, if any."""
    spec = getattr(function, TEMP_WORKFLOW_ATTRIBUTE, None)
    return spec if isinstance(spec, WorkflowSpec) else None


def check_not_shadowed(spec: WorkflowSpec, registry: Registry) -> None:
    """Refuses to start a step whose temporary workflow's name another step took since.

    Two steps may share a name (DBOS only warns), but a worker runs a workflow by its
    name: started, the earlier step would run as the later one.

    Raises:
        DBOSException: the name now belongs to another step; nothing is started.
    """
    if not spec.temporary:
        return
    current = registry.get(spec.name)
    if current is not None and current is not spec and current.function is not spec.function:
        step_name = spec.name.removeprefix(TEMP_PREFIX)
        raise DBOSException(
            f"Cannot start step {step_name} as a workflow: another step registered the "
            f"name {step_name!r} after it, and workers run the workflow {spec.name!r} by "
            "name; give one of the steps a distinct @DBOS.step(name=...)"
        )
