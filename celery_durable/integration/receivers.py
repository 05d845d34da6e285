"""A workflow id reused by a method of another receiver: refused, as DBOS refuses it.

DBOS compares a reused id's class and config names (columns there) with the new
call's. Here a method's receiver is recorded with its inputs (engine/classes.py), so
it is read back only when the id was chosen by the caller (``SetWorkflowID``) and
already names a workflow of the same function: a fresh id cannot collide.
"""

from __future__ import annotations

from typing import Any

from celery_durable.core.serialization import Serializer
from celery_durable.core.serializers import native_inputs
from celery_durable.engine.classes import split_receiver
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSConflictingWorkflowError
from celery_durable.store import SystemStore


def refuse_another_receiver(
    store: SystemStore,
    serializer: Serializer,
    spec: WorkflowSpec,
    args: tuple[Any, ...],
    workflow_id: str,
) -> None:
    """Raises if workflow ``workflow_id`` is ``spec``'s method called on another
    receiver (another class, or another configured instance) than ``args[0]``.

    Raises:
        DBOSConflictingWorkflowError: DBOS's text ("Workflow already exists with a
            different class name" / "config name").
    """
    ours, _ = split_receiver(spec.membership, spec.function, args)
    if ours is None:
        return
    existing = store.workflows.get_workflow(workflow_id)
    if existing is None or existing.name != spec.name or existing.inputs is None:
        return  # new, or another function's (refused by the insert, by name)
    recorded = native_inputs(serializer.loads(existing.inputs)).get("receiver")
    theirs = (None, None) if recorded is None else tuple(recorded)
    for field, mine, stored in (
        ("class", ours.class_name, theirs[0]),
        ("config", ours.config_name, theirs[1]),
    ):
        if mine != stored:
            raise DBOSConflictingWorkflowError(
                workflow_id,
                f"Workflow already exists with a different {field} name: {stored}, "
                f"but the provided {field} name is: {mine}",
            )
