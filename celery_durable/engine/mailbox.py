"""Messages between workflows: DBOS's ``send`` and ``recv``, and the durable wait that
``recv`` and ``get_event`` share.

Inside workflow code each is a durable operation (DBOS's numbering: ``send`` takes one
function id, ``recv`` two — its own and its timeout's ``DBOS.sleep``). A ``recv`` that
finds no message frees the worker: it unwinds with :class:`RescheduleWorkflow` carrying
what it waits for, and a ``send`` publishes it again at once. A direct call waits
in-process for the database's notification instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, Wait
from celery_durable.core.serialization import Serializer, writer_for
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import checkpoints
from celery_durable.engine.context import WorkflowContext, current_workflow, in_workflow_code
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.store import Dispatch, Received
from celery_durable.store.channels import MESSAGES_CHANNEL, NULL_TOPIC
from celery_durable.store.listener import FALLBACK_SECONDS

logger = logging.getLogger("celery_durable.messaging")

SEND_NAME = "DBOS.send"
RECV_NAME = "DBOS.recv"
SLEEP_NAME = "DBOS.sleep"


def topic_key(topic: str | None) -> str:
    """The stored topic: DBOS's sentinel for None (``recv(None)`` matches only it)."""
    if topic is None:
        return NULL_TOPIC
    if not isinstance(topic, str):
        raise DBOSException(f"A topic must be a string or None, not {topic!r}")
    return topic


def require_id(label: str, workflow_id: object) -> str:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise DBOSException(f"{label} must be a non-empty workflow id, not {workflow_id!r}")
    return workflow_id


def require_timeout(timeout_seconds: object) -> float:
    if (
        not isinstance(timeout_seconds, int | float)
        or isinstance(timeout_seconds, bool)
        or timeout_seconds < 0
    ):
        raise DBOSException(f"timeout_seconds must be a number >= 0, not {timeout_seconds!r}")
    return float(timeout_seconds)


def send(
    store: EngineStore,
    serializer: Serializer,
    publish: Callable[[str, Dispatch], None],
    destination_id: str,
    message: Any,
    topic: str | None = None,
    idempotency_key: str | None = None,
    serialization_type: object = None,
) -> None:
    """``DBOS.send``: durable in workflow code; elsewhere (a step too) a plain send.

    Raises:
        DBOSNonExistentWorkflowError: no workflow has the destination id.
        DBOSSerializationError: the message is not serializable (nothing is written).
    """
    require_id("destination_id", destination_id)
    key = topic_key(topic)
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key
    ):
        raise DBOSException(f"idempotency_key must be a non-empty string, not {idempotency_key!r}")
    running = current_workflow.get()
    writer = writer_for(serialization_type, serializer, running is not None and running.portable)
    text = writer.dumps(message)
    # As DBOS: the key is unique per recipient; a repeated send adds nothing.
    message_uuid = (
        str(uuid.uuid4()) if idempotency_key is None else f"{idempotency_key}::{destination_id}"
    )
    workflow = in_workflow_code()
    if workflow is not None:
        _send_from_workflow(workflow, destination_id, key, message_uuid, text)
        return
    sent = store.messages.send_message(destination_id, key, message_uuid, text)
    if sent.outcome == "missing":
        raise DBOSNonExistentWorkflowError("`send` destination", destination_id)
    if sent.wake is not None:
        publish_wake(publish, destination_id, sent.wake)


def _send_from_workflow(
    workflow: WorkflowContext, destination_id: str, topic: str, message_uuid: str, text: str
) -> None:
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(workflow, function_id, SEND_NAME, recorded.function_name)
        checkpoints.replay(workflow, recorded)  # raises a recorded failure
        return
    with checkpoints.system_database_failure_reschedules():
        sent = workflow.execution.messages.send_message(
            destination_id, topic, message_uuid, text, function_id
        )
    if sent.outcome == "missing":
        # As DBOS 3.4: the failure is the operation's outcome; a replay raises it again.
        error = DBOSNonExistentWorkflowError("`send` destination", destination_id)
        record_outcome(workflow, function_id, SEND_NAME, error=error)
        raise error
    if sent.wake is not None:
        publish_wake(workflow.launcher.publish, destination_id, sent.wake)
    checkpoints.stop_if_cancelled(workflow, sent.sender_status)


def publish_wake(
    publish: Callable[[str, Dispatch], None], workflow_id: str, dispatch: Dispatch
) -> None:
    """Publishes a workflow a message or an event made due. Best effort: what was sent is
    committed, and the row says the workflow is due, so if the broker fails the
    recovery sweep publishes it after its grace period."""
    try:
        publish(workflow_id, dispatch)
    except Exception:
        logger.warning(
            "Could not publish workflow %s now; the sweep will", workflow_id, exc_info=True
        )


def recv(topic: str | None = None, timeout_seconds: float = 60) -> Any:
    """``DBOS.recv``: the oldest unconsumed message of ``topic`` sent to this workflow,
    or None once ``timeout_seconds`` pass. Only in workflow code.
    """
    key = topic_key(topic)
    timeout = require_timeout(timeout_seconds)
    workflow = in_workflow_code()
    if workflow is None:
        raise DBOSException("recv() must be called from within a workflow")

    def attempt(function_id: int, deadline_function_id: int, deadline: str) -> Received:
        return workflow.execution.messages.receive(
            function_id=function_id,
            topic=key,
            deadline_function_id=deadline_function_id,
            deadline=deadline,
        )

    return durable_wait(
        workflow,
        name=RECV_NAME,
        timeout_seconds=timeout,
        attempt=attempt,
        wait=Wait(kind="msg", target=workflow.workflow_id, key=key),
        channel=MESSAGES_CHANNEL,
        reason=f"waiting for a message on topic {topic!r}",
    )


def durable_wait(
    workflow: WorkflowContext,
    *,
    name: str,
    timeout_seconds: float,
    attempt: Callable[[int, int, str], Received],
    wait: Wait,
    channel: str,
    reason: str,
) -> Any:
    """An operation of workflow code that waits (``recv``, ``get_event``): two function
    ids, its own and its deadline's, as DBOS takes them. A recorded outcome is replayed;
    otherwise it takes what ``attempt(function_id, deadline_function_id, deadline)``
    finds (it checkpoints it itself), or waits for it until the deadline, which is
    recorded once (``DBOS.sleep``) so that a replay waits no longer than the first
    execution meant to. Past the deadline the operation's outcome is None.

    Raises:
        RescheduleWorkflow: under Celery, to free the worker until the deadline; a
            writer makes the workflow due at once.
    """
    function_id = workflow.next_function_id()
    deadline_function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None and recorded.completed:
        checkpoints.expect_name(workflow, function_id, name, recorded.function_name)
        return checkpoints.replay(workflow, recorded)
    deadline_ms = _deadline(workflow, deadline_function_id, timeout_seconds)
    started_ms = _wait_started(workflow, deadline_function_id)
    deadline_text = workflow.serializer.dumps(deadline_ms)
    with _subscription(workflow, channel, f"{wait.target}::{wait.key}") as notified:
        while True:
            with checkpoints.system_database_failure_reschedules():
                received = attempt(function_id, deadline_function_id, deadline_text)
            checkpoints.stop_if_cancelled(workflow, received.workflow_status)
            if received.found:
                return (
                    None
                    if received.value is None
                    else _load(workflow, function_id, name, received.value)
                )
            remaining = (deadline_ms - now_epoch_ms()) / 1000
            if remaining <= 0:
                record_outcome(workflow, function_id, name, output=None, started_at=started_ms)
                return None
            if notified is None:
                until = dt.datetime.fromtimestamp(deadline_ms / 1000, tz=dt.UTC)
                signal = RescheduleWorkflow(
                    remaining,
                    f"{reason} (until {until.isoformat(timespec='seconds')})",
                    routine=True,
                )
                signal.wait = wait
                raise signal
            notified.wait(min(remaining, FALLBACK_SECONDS))
            notified.clear()


@contextlib.contextmanager
def _subscription(
    workflow: WorkflowContext, channel: str, payload: str
) -> Iterator[threading.Event | None]:
    """A direct call waits for the writer's notification; under Celery there is none
    (the workflow is rescheduled)."""
    if not workflow.inline_retries:
        yield None
        return
    with workflow.store.notifications.subscribe(channel, payload) as event:
        yield event


def _deadline(workflow: WorkflowContext, function_id: int, timeout_seconds: float) -> int:
    recorded = workflow.checkpoints.get(function_id)
    if recorded is None:
        return now_epoch_ms() + round(timeout_seconds * 1000)
    checkpoints.expect_name(workflow, function_id, SLEEP_NAME, recorded.function_name)
    return int(checkpoints.replay(workflow, recorded))


def _wait_started(workflow: WorkflowContext, deadline_function_id: int) -> int:
    """When the wait began: when its deadline was recorded (by an earlier execution),
    else now. The wait's operation spans it, as DBOS times a ``recv``."""
    recorded = workflow.checkpoints.get(deadline_function_id)
    started = None if recorded is None else recorded.started_at_epoch_ms
    return now_epoch_ms() if started is None else started


def _load(workflow: WorkflowContext, function_id: int, name: str, text: str) -> Any:
    return checkpoints.load(workflow, function_id, name, text)


def record_outcome(
    workflow: WorkflowContext,
    function_id: int,
    name: str,
    *,
    output: Any = None,
    error: BaseException | None = None,
    started_at: int | None = None,
) -> None:
    now = now_epoch_ms()
    serializer = workflow.serializer
    checkpoints.record(
        workflow,
        StepRecord(
            function_id=function_id,
            function_name=name,
            output=None if error is not None else serializer.dumps(output),
            error=None if error is None else serializer.dumps(error),
            attempts=1,
            attempt_log=None,
            retry_due_at_epoch_ms=None,
            started_at_epoch_ms=now if started_at is None else started_at,
            completed_at_epoch_ms=now,
        ),
    )
