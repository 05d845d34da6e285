"""``DBOS.start_workflow_async`` of an ``async def`` workflow in a program that runs its
own worker: the workflow runs on the caller's event loop, as a task, as DBOS 3.4 runs it.

The program's worker is this process, so nothing is gained by sending the workflow
through the broker to a thread of it; on the caller's loop, the workflow can use what
is bound to that loop (an ``asyncio.Event``, a client) as in DBOS. It runs as a direct
call does (``WorkflowStarter.run_inline_async``): its row is written PENDING before the
handle is returned, its step retries and sleeps wait on the loop, and if the loop stops
before it ends, the recovery sweep runs it again like any workflow whose owner went
away. A workflow started with a queue, or from workflow code, still goes to the
workers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from celery_durable.engine.context import next_workflow_id
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSWorkflowIDInUseError
from celery_durable.integration.starting import WorkflowStarter

logger = logging.getLogger(__name__)

# The loop keeps only weak references to its tasks: these keep the running ones.
_running: set[asyncio.Task[Any]] = set()


async def start_on_running_loop(
    starter: WorkflowStarter, spec: WorkflowSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, asyncio.Task[Any] | None]:
    """Writes the workflow's row and runs it as a task of the running loop; returns its
    id at once, with the task (None: a workflow with this id was already written, and
    is not run again here).

    Raises:
        DBOSWorkflowIDInUseError: ``SetWorkflowID(..., "reject")`` and the id is in use.
    """
    row = starter.new_row(spec, args, kwargs, status="PENDING")
    next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
    found = await asyncio.to_thread(starter.insert, row)
    if not found.inserted:
        if row.reject_reused_id:
            raise DBOSWorkflowIDInUseError(row.workflow_uuid, found.status, found.name)
        return row.workflow_uuid, None
    # The task starts from the caller's context (its authenticated user, ...), less
    # the id just used.
    context = contextvars.copy_context()
    task = asyncio.create_task(
        starter.run_inline_async(row.workflow_uuid, spec),
        name=f"workflow-{row.workflow_uuid}",
        context=context,
    )
    _running.add(task)
    task.add_done_callback(_finished)
    return row.workflow_uuid, task


def _finished(task: asyncio.Task[Any]) -> None:
    """Nothing awaits the task: the workflow's outcome, its error included, is in its
    row (read through the handle). Retrieving the exception keeps asyncio from logging
    it as never retrieved."""
    _running.discard(task)
    if not task.cancelled() and (failure := task.exception()) is not None:
        logger.debug("Workflow task %s ended with %r", task.get_name(), failure)
