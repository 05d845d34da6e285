"""Workflows inside Celery's canvas: ``chain``, ``group``, ``chord``, ``link``.

A workflow's task is called two ways. celery_durable's own messages (``publishing``)
carry the workflow id as their one argument. Any other message is a *canvas message*:
``process_order.s("o-1")`` in a chain, a group, a chord, or ``.delay()``; its arguments
are the workflow's (with the previous task's result first, in a chain) and its task id
becomes the workflow id.

Celery fires what comes after a task (the ``chain`` and ``link`` options,
``link_error``, the ``chord`` counter of a result backend) when the task's execution
returns or raises. A workflow's task returns many times before the workflow ends
(each retry, sleep or wait is a Celery retry), and may end on another worker, from a
message the recovery sweep published. So:

1. The canvas message's first delivery records those options in PostgreSQL with the
   workflow (``workflow_canvas``), writes the workflow's row (its id: the task id),
   strips them from its request (a Celery retry then republishes the workflow's own
   message: its id, no callbacks) and runs the workflow.
2. The delivery that completes the workflow, or any later delivery that finds it
   finished, claims the firing (one conditional UPDATE), puts the recorded options back
   on its request and returns the workflow's output (or raises its error): Celery's
   tracer then fires the chain, the links or the errbacks and reports to the chord, as
   for any task. Its ``after_return`` confirms the firing.
3. The recovery sweep publishes a workflow whose callbacks were not fired in time (its
   worker died after the claim, or the workflow ended without a delivery: cancelled);
   that delivery fires them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from kombu.utils.json import dumps, loads

from celery_durable.core.outcomes import decode_outcome
from celery_durable.core.serialization import to_jsonable
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.integration import publishing
from celery_durable.integration.process import ProcessServices
from celery_durable.integration.starting import WorkflowStarter
from celery_durable.store.canvas_store import Firing

logger = logging.getLogger("celery_durable.canvas")

# What the canvas asks of a task's end, as ``celery.app.task.Context`` names it.
_FIRED = ("callbacks", "errbacks", "chain", "chord")
_KEPT = (*_FIRED, "group", "group_index", "root_id", "parent_id")

# Set on the request of a delivery that fires: ``after_return`` confirms its workflow's.
FIRING_ATTRIBUTE = "celery_durable_firing"


def is_workflow_message(task: Task[Any, Any]) -> bool:
    """True for celery_durable's own message of a workflow (argument: its id).

    Its header says so; a message published before the header existed (or whose
    headers a broker dropped) has the workflow id as its only argument and task id.
    """
    request = task.request
    headers = request.headers if isinstance(request.headers, dict) else {}
    if getattr(request, publishing.WORKFLOW_HEADER, None) or headers.get(
        publishing.WORKFLOW_HEADER
    ):
        return True
    args = list(request.args or ())
    return len(args) == 1 and not request.kwargs and args[0] == request.id


def start_from_canvas(task: Task[Any, Any], spec: WorkflowSpec, process: ProcessServices) -> str:
    """Starts the workflow a canvas message asks for (idempotent: its id is the task
    id), recording what to fire when it ends; returns the workflow id, for this
    delivery to run it.

    The request is then rewritten as the workflow's own message (its id the only
    argument, no callbacks): a Celery retry of this delivery (a step's retry, a sleep)
    publishes that, and fires nothing.
    """
    request = task.request
    workflow_id = str(request.id)
    recorded = {key: getattr(request, key, None) for key in _KEPT}
    # Before the workflow's row: a crash in between leaves the record for the message's
    # redelivery, never a workflow whose callbacks are unknown.
    if any(recorded[key] for key in _FIRED) and not process.store.canvas.attach(
        workflow_id, dumps(recorded)
    ):
        logger.warning(
            "Workflow %s: another canvas's callbacks wait for it (one set per "
            "workflow): this canvas's are not recorded and will not fire",
            workflow_id,
        )
    starter = WorkflowStarter(process)
    row = starter.new_row(
        spec,
        tuple(request.args or ()),
        dict(request.kwargs or {}),
        status="ENQUEUED",
        celery_queue=_delivery_queue(process.celery, request.delivery_info, spec.name),
        workflow_id=workflow_id,
    )
    # When the workflow exists (a redelivery, or an idempotent id), running it finds it
    # finished (and fires the callbacks), or running elsewhere (nothing to do).
    inserted = starter.insert(row).inserted
    logger.info(
        "Workflow %s (%s) %s by a canvas message",
        workflow_id,
        spec.name,
        "started" if inserted else "was already started",
    )
    request.update({key: None for key in _FIRED}, args=[workflow_id], kwargs={})
    return workflow_id


def _delivery_queue(app: Celery, delivery_info: Any, name: str) -> str:
    """The queue the canvas message came from (``.set(queue=...)``), when this worker
    knows it by that name; else the queue Celery routes the workflow's name to."""
    routing_key = (delivery_info or {}).get("routing_key")
    if routing_key and routing_key in app.amqp.queues:
        return str(routing_key)
    return publishing.resolve_queue(app, name)


def claim_firing(task: Task[Any, Any], process: ProcessServices, workflow_id: str) -> Firing | None:
    """Claims the firing of a finished workflow's canvas callbacks and puts them on this
    delivery's request, for Celery's tracer to fire when the task returns; None if
    there is nothing to fire (none recorded, fired already, or being fired)."""
    lease_ms = round(process.config["recovery_grace_seconds"] * 1000)
    try:
        firing = process.store.canvas.claim_firing(workflow_id, lease_ms)
    except DBOSSystemDatabaseError:
        # Nothing claimed: the recovery sweep publishes the workflow to fire them.
        logger.warning("Workflow %s: could not claim its canvas callbacks", workflow_id)
        return None
    if firing is not None:
        task.request.update(loads(firing.request))
        setattr(task.request, FIRING_ATTRIBUTE, workflow_id)
    return firing


def recorded_outcome(firing: Firing, process: ProcessServices, workflow_id: str) -> Any:
    """The return value of a delivery that found its workflow finished and fires its
    callbacks: the recorded output, or the recorded error raised (a cancelled
    workflow's is ``DBOSAwaitedWorkflowCancelledError``)."""
    _, output = decode_outcome(
        workflow_id, firing.status, firing.output, firing.error, process.serializer
    )
    return to_jsonable(output)


def confirm_firing(task: Task[Any, Any], process: ProcessServices) -> None:
    """After Celery's tracer fired what the request carried: records it fired."""
    workflow_id = getattr(task.request, FIRING_ATTRIBUTE, None)
    if workflow_id is None:
        return
    try:
        process.store.canvas.confirm_firing(str(workflow_id))
    except Exception:
        # The lease runs out and the sweep fires them again (a duplicate).
        logger.warning(
            "Workflow %s: could not record that its canvas callbacks were fired",
            workflow_id,
            exc_info=True,
        )


def fire_overdue(process: ProcessServices, *, grace_seconds: float, batch: int) -> int:
    """For the recovery sweep: publishes each finished workflow whose callbacks were not
    fired in time; its delivery fires them. Returns how many it published."""
    published = 0
    for overdue in process.store.canvas.overdue(grace_ms=round(grace_seconds * 1000), limit=batch):
        try:
            publishing.publish_workflow(
                process.celery,
                overdue.name,
                overdue.workflow_uuid,
                queue=overdue.queue_name,
                generation=overdue.generation,
            )
        except Exception:
            logger.exception("Could not publish workflow %s to fire its canvas callbacks", overdue)
            continue
        published += 1
        logger.info(
            "Recovery: published workflow %s (%s) again: %s",
            overdue.workflow_uuid,
            overdue.name,
            overdue.reason,
        )
    return published
