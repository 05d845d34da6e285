"""``DBOS.patch`` and ``DBOS.deprecate_patch``: branching on when a workflow started.

A patch marker is a checkpoint named ``DBOS.patch-<name>`` at the position of the
operation after it (DBOS 3.x's semantics):

- ``patch``: with no checkpoint at the next position (a new workflow, or one that had
  not got this far), the marker is recorded there and the patched code runs (True);
  the marker itself, on replay, means the same (True); any other checkpoint there means
  the workflow started before the patch: the old code runs (False), and the position is
  left to it.
- ``deprecate_patch``: once no workflow that started before the patch can replay, code
  drops the old branch; it takes the marker's position where one is recorded and never
  writes one (always True). When no workflow with the marker remains, remove the call.

Their ``_async`` twins yield to the event loop once before taking the position, as
DBOS's do (they probe the database in a thread): if a sibling task of the workflow took
a position meanwhile, where the marker lands depends on task scheduling, and they raise
``DBOSPatchNondeterminismError`` rather than record a history a replay cannot follow.
"""

from __future__ import annotations

import asyncio

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.engine import checkpoints
from celery_durable.engine.context import WorkflowContext, in_workflow_code
from celery_durable.error import DBOSException, DBOSPatchNondeterminismError

PATCH_PREFIX = "DBOS.patch-"


def patch(name: str) -> bool:
    """Whether this workflow runs the code after the patch ``name`` (see the module)."""
    workflow = _workflow("patch", name)
    marker = PATCH_PREFIX + name
    recorded = workflow.checkpoints.get(workflow.peek_function_id())
    if recorded is not None:
        if recorded.function_name != marker:
            return False  # started before the patch: the old code's operation is here
        workflow.next_function_id()
        return True
    function_id = workflow.next_function_id()
    now = now_epoch_ms()
    checkpoints.record(
        workflow,
        StepRecord(
            function_id=function_id,
            function_name=marker,
            output=None,
            error=None,
            attempts=1,
            attempt_log=None,
            retry_due_at_epoch_ms=None,
            started_at_epoch_ms=now,
            completed_at_epoch_ms=now,
        ),
    )
    return True


def deprecate_patch(name: str) -> bool:
    """Takes the position of patch ``name``'s marker where one is recorded; writes none."""
    workflow = _workflow("deprecate_patch", name)
    recorded = workflow.checkpoints.get(workflow.peek_function_id())
    if recorded is not None and recorded.function_name == PATCH_PREFIX + name:
        workflow.next_function_id()
    return True


async def patch_async(name: str) -> bool:
    """``patch`` from sequential ``async def`` workflow code (see the module).

    Raises:
        DBOSPatchNondeterminismError: called concurrently with other operations of the
            workflow.
    """
    await _alone(_workflow("patch_async", name), "patch_async", name)
    return patch(name)


async def deprecate_patch_async(name: str) -> bool:
    """``deprecate_patch`` from sequential ``async def`` workflow code.

    Raises:
        DBOSPatchNondeterminismError: called concurrently with other operations of the
            workflow.
    """
    await _alone(_workflow("deprecate_patch_async", name), "deprecate_patch_async", name)
    return deprecate_patch(name)


async def _alone(workflow: WorkflowContext, method: str, name: str) -> None:
    """Yields once; raises if another task of the workflow took a position meanwhile."""
    position = workflow.peek_function_id()
    await asyncio.sleep(0)
    if workflow.peek_function_id() != position:
        raise DBOSPatchNondeterminismError(
            workflow.workflow_id,
            PATCH_PREFIX + name,
            f"DBOS.{method} was called concurrently with other operations in the same "
            "workflow, so the position of its marker would depend on task scheduling; "
            "call it from sequential workflow code",
        )


def _workflow(method: str, name: str) -> WorkflowContext:
    if not isinstance(name, str) or not name:
        raise DBOSException(f"DBOS.{method} takes a non-empty patch name, not {name!r}")
    workflow = in_workflow_code()
    if workflow is None:
        raise DBOSException(f"DBOS.{method} must be called from a workflow")
    return workflow
