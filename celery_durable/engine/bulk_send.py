"""DBOS 3.4's ``send_bulk`` and ``send(send_to_forks=True)``: many messages, one
transaction; in workflow code one recorded operation (a replay sends nothing).

With ``to_forks`` each message also goes to every workflow recursively forked from its
destination that exists when it is sent (a fork made later does not get it). Every
destination must exist, else nothing is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery_durable.core.serialization import Serializer, writer_for
from celery_durable.engine import checkpoints
from celery_durable.engine.context import current_workflow, in_workflow_code
from celery_durable.engine.mailbox import publish_wake, record_outcome, require_id, topic_key
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from celery_durable.store import Dispatch
from celery_durable.store.bulk_sending import BulkSent, Outgoing

SEND_BULK_NAME = "DBOS.send_bulk"

# (destination_id, message, topic, idempotency_key)
Message = tuple[str, Any, str | None, str | None]


def send_bulk(
    store: EngineStore,
    serializer: Serializer,
    publish: Callable[[str, Dispatch], None],
    messages: Sequence[Message],
    *,
    serialization_type: object = None,
    to_forks: bool = False,
    function_name: str = SEND_BULK_NAME,
) -> None:
    """Sends ``messages`` together.

    Raises:
        DBOSNonExistentWorkflowError: a destination does not exist (nothing is sent).
        DBOSException: an idempotency key appears twice, or a bad id, topic or key.
        DBOSSerializationError: a message cannot be serialized (nothing is sent).
    """
    running = current_workflow.get()
    writer = writer_for(serialization_type, serializer, running is not None and running.portable)
    outgoing = outgoing_messages(messages, writer)
    workflow = in_workflow_code()
    if workflow is None:
        if not outgoing:
            return
        sent = store.messages.send_bulk(outgoing, to_forks)
        if sent.outcome == "missing":
            raise DBOSNonExistentWorkflowError("`send` destination", sent.missing or "")
        _publish(publish, sent)
        return
    function_id = workflow.next_function_id()
    recorded = workflow.checkpoints.get(function_id)
    if recorded is not None:
        checkpoints.expect_name(workflow, function_id, function_name, recorded.function_name)
        checkpoints.replay(workflow, recorded)  # raises a recorded failure
        return
    with checkpoints.system_database_failure_reschedules():
        sent = workflow.execution.messages.send_bulk(outgoing, to_forks, function_id, function_name)
    if sent.outcome == "missing":
        error = DBOSNonExistentWorkflowError("`send` destination", sent.missing or "")
        record_outcome(workflow, function_id, function_name, error=error)
        raise error
    _publish(workflow.launcher.publish, sent)
    checkpoints.stop_if_cancelled(workflow, sent.sender_status)


def outgoing_messages(messages: Sequence[Message], writer: Serializer) -> list[Outgoing]:
    keys = [key for _, _, _, key in messages if key is not None]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DBOSException(
            f"send_bulk received duplicate idempotency keys: {', '.join(duplicates)}"
        )
    outgoing = []
    for destination, message, topic, key in messages:
        if key is not None and (not isinstance(key, str) or not key):
            raise DBOSException(f"idempotency_key must be a non-empty string, not {key!r}")
        outgoing.append(
            Outgoing(
                destination=require_id("destination_id", destination),
                topic=topic_key(topic),
                key=str(uuid.uuid4()) if key is None else key,
                message=writer.dumps(message),
            )
        )
    return outgoing


def _publish(publish: Callable[[str, Dispatch], None], sent: BulkSent) -> None:
    for workflow_id, dispatch in sent.wakes:
        publish_wake(publish, workflow_id, dispatch)
