"""Workflow events: DBOS's ``set_event``, ``get_event`` and ``get_all_events``.

An event is a key/value a workflow publishes; the last write wins and every write is
kept in the history (which ``fork_workflow`` copies). ``get_event`` in workflow code
is a durable wait like ``recv`` (two function ids: ``DBOS.getEvent`` and its timeout's
``DBOS.sleep``); ``set_event`` publishes the workflows that waited for it at once.
Outside any workflow, ``get_event`` waits for the database's notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from celery_durable.core.records import Wait
from celery_durable.core.serialization import Serializer, writer_for
from celery_durable.engine import checkpoints
from celery_durable.engine.context import (
    WorkflowContext,
    current_step,
    current_workflow,
    in_workflow_code,
)
from celery_durable.engine.mailbox import (
    durable_wait,
    publish_wake,
    record_outcome,
    require_id,
    require_timeout,
)
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSException
from celery_durable.store import Received
from celery_durable.store.channels import EVENTS_CHANNEL
from celery_durable.store.listener import FALLBACK_SECONDS

SET_EVENT_NAME = "DBOS.setEvent"
GET_EVENT_NAME = "DBOS.getEvent"
GET_EVENTS_NAME = "DBOS.get_events"


def require_key(key: object) -> str:
    if not isinstance(key, str):
        raise DBOSException(f"An event key must be a string, not {key!r}")
    return key


def set_event(key: str, value: Any, serialization_type: object = None) -> None:
    """``DBOS.set_event``: in workflow code a durable operation; in a step, part of the
    step (recorded under the step's id, as DBOS does)."""
    require_key(key)
    workflow = current_workflow.get()
    step = current_step.get()
    if workflow is None:
        raise DBOSException("set_event() must be called from within a workflow or step")
    text = writer_for(serialization_type, workflow.serializer, workflow.portable).dumps(value)
    if step is not None:
        assert step.step_id is not None
        function_id, record = step.step_id, False
    else:
        function_id, record = workflow.next_function_id(), True
        recorded = workflow.checkpoints.get(function_id)
        if recorded is not None:
            checkpoints.expect_name(workflow, function_id, SET_EVENT_NAME, recorded.function_name)
            return
    with checkpoints.system_database_failure_reschedules():
        woken = workflow.execution.messages.set_event(
            function_id=function_id, key=key, value=text, record=record
        )
    for waiter in woken:
        publish_wake(workflow.launcher.publish, waiter.workflow_uuid, waiter.dispatch)


def get_event(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    timeout_seconds: float = 60,
) -> Any:
    """``DBOS.get_event``: the event's latest value, or None once the timeout passes."""
    require_id("workflow_id", workflow_id)
    require_key(key)
    timeout = require_timeout(timeout_seconds)
    workflow = in_workflow_code()
    if workflow is not None:
        return _get_event_in_workflow(workflow, workflow_id, key, timeout)
    deadline = time.monotonic() + timeout
    with store.notifications.subscribe(EVENTS_CHANNEL, f"{workflow_id}::{key}") as notified:
        while True:
            value = store.messages.get_event(workflow_id, key)
            if value is not None:
                return serializer.loads(value)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            notified.wait(min(remaining, FALLBACK_SECONDS))
            notified.clear()


async def get_event_async(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    key: str,
    timeout_seconds: float = 60,
) -> Any:
    """``get_event`` for a coroutine outside workflow code: it awaits the notification,
    holding no thread while it waits (each read of the database runs in one briefly), so
    any number of waits run at once."""
    require_id("workflow_id", workflow_id)
    require_key(key)
    timeout = require_timeout(timeout_seconds)
    deadline = time.monotonic() + timeout
    subscription = store.notifications.subscribe_async(EVENTS_CHANNEL, f"{workflow_id}::{key}")
    async with subscription as notified:
        while True:
            value = await asyncio.to_thread(store.messages.get_event, workflow_id, key)
            if value is not None:
                return serializer.loads(value)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(notified.wait(), min(remaining, FALLBACK_SECONDS))
            notified.clear()


def _get_event_in_workflow(
    workflow: WorkflowContext, target: str, key: str, timeout_seconds: float
) -> Any:

    def attempt(function_id: int, deadline_function_id: int, deadline: str) -> Received:
        return workflow.execution.messages.get_event(
            function_id=function_id,
            target=target,
            key=key,
            deadline_function_id=deadline_function_id,
            deadline=deadline,
        )

    return durable_wait(
        workflow,
        name=GET_EVENT_NAME,
        timeout_seconds=timeout_seconds,
        attempt=attempt,
        wait=Wait(kind="event", target=target, key=key),
        channel=EVENTS_CHANNEL,
        reason=f"waiting for event {key!r} of workflow {target}",
    )


def get_all_events(store: EngineStore, serializer: Serializer, workflow_id: str) -> dict[str, Any]:
    """``DBOS.get_all_events``: every event's latest value (in workflow code, recorded
    once as ``DBOS.get_events``, as DBOS does)."""
    require_id("workflow_id", workflow_id)

    def read() -> dict[str, Any]:
        return {
            k: serializer.loads(v) for k, v in store.messages.get_all_events(workflow_id).items()
        }

    workflow = in_workflow_code()
    if workflow is None:
        return read()
    events: dict[str, Any] = recorded_value(workflow, GET_EVENTS_NAME, read)
    return events


def recorded_value(workflow: WorkflowContext, name: str, compute: Callable[[], Any]) -> Any:
    """An operation of workflow code whose value is computed once and then replayed."""
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None and recorded.completed:
        checkpoints.expect_name(workflow, function_id, name, recorded.function_name)
        return checkpoints.replay(workflow, recorded)
    with checkpoints.system_database_failure_reschedules():
        value = compute()
    record_outcome(workflow, function_id, name, output=value)
    return value
