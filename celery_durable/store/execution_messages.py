"""Messages, events and streams of one execution's workflow code: each one round trip on
the fence connection, with its checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.bulk_sending import BulkSent, Outgoing, bulk_from_rows, bulk_params
from celery_durable.store.fence import FencedStatements
from celery_durable.store.rows import Dispatch, Received, Sent, Woken
from celery_durable.store.sql import bulk_messages, messaging


class ExecutionMessages:
    """What one execution's workflow code sends and reads (``WorkflowExecution.messages``).

    Its statements run on the fence connection, fenced like the execution's others: a
    send or a receive and its checkpoint commit together, and none is written once the
    execution lost its fence.
    """

    def __init__(self, statements: FencedStatements, workflow_uuid: str) -> None:
        self._statements = statements
        self.workflow_uuid = workflow_uuid

    def send_message(
        self, destination: str, topic: str, message_uuid: str, message: str, function_id: int
    ) -> Sent:
        """Sends a message from workflow code; the send and its checkpoint commit together."""
        row = self._statements.one(
            lambda: f"sending a message from {self.workflow_uuid} to {destination}",
            messaging.SEND_MESSAGE_SQL,
            {
                "destination": destination,
                "topic": topic,
                "message_uuid": message_uuid,
                "message": message,
                "now": now_epoch_ms(),
                "sender": self.workflow_uuid,
                "sender_function_id": function_id,
            },
        )
        assert row is not None
        return sent_from_row(row)

    def send_bulk(
        self, messages: Sequence[Outgoing], to_forks: bool, function_id: int, function_name: str
    ) -> BulkSent:
        """Sends messages from workflow code: one recorded operation, one transaction."""
        params = {
            **bulk_params(messages, to_forks),
            "now": now_epoch_ms(),
            "sender": self.workflow_uuid,
            "sender_function_id": function_id,
            "function_name": function_name,
        }
        rows = self._statements.every(
            lambda: f"sending {len(messages)} messages from {self.workflow_uuid}",
            bulk_messages.SEND_BULK_SQL,
            params,
        )
        return bulk_from_rows(rows)

    def receive(
        self, *, function_id: int, topic: str, deadline_function_id: int, deadline: str
    ) -> Received:
        """Takes the oldest message of ``topic``, checkpointed (see ``RECV_MESSAGE``)."""
        row = self._statements.one(
            lambda: f"receiving a message in {self.workflow_uuid}",
            messaging.RECV_MESSAGE_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "topic": topic,
                "deadline_function_id": deadline_function_id,
                "deadline": deadline,
                "now": now_epoch_ms(),
            },
        )
        assert row is not None
        return Received(found=bool(row[1]), value=row[0], workflow_status=row[2])

    def get_event(
        self, *, function_id: int, target: str, key: str, deadline_function_id: int, deadline: str
    ) -> Received:
        """Reads another workflow's event, checkpointed if set (``GET_EVENT_IN_WORKFLOW``)."""
        row = self._statements.one(
            lambda: f"reading event {key!r} of {target} in {self.workflow_uuid}",
            messaging.GET_EVENT_IN_WORKFLOW_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "target": target,
                "key": key,
                "deadline_function_id": deadline_function_id,
                "deadline": deadline,
                "now": now_epoch_ms(),
            },
        )
        assert row is not None
        return Received(found=bool(row[1]), value=row[0], workflow_status=row[2])

    def set_event(self, *, function_id: int, key: str, value: str, record: bool) -> list[Woken]:
        """Sets an event of this workflow (checkpointed when ``record``: in workflow code;
        a step's is part of the step). Returns the workflows waiting for it."""
        rows = self._statements.every(
            lambda: f"setting event {key!r} of {self.workflow_uuid}",
            messaging.SET_EVENT_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "function_id": function_id,
                "key": key,
                "value": value,
                "now": now_epoch_ms(),
                "record": record,
            },
        )
        return [
            Woken(
                workflow_uuid=row[1],
                dispatch=Dispatch(name=row[2], queue_name=row[3], generation=row[4]),
            )
            for row in rows
            if row[0] == "woken"
        ]

    def write_stream(
        self, *, key: str, value: str, function_id: int, record_name: str | None
    ) -> int | None:
        """Appends to a stream of this workflow; returns the offset (None: a replay)."""
        row = self._statements.one(
            lambda: f"writing stream {key!r} of {self.workflow_uuid}",
            messaging.WRITE_STREAM_SQL,
            {
                "workflow_uuid": self.workflow_uuid,
                "key": key,
                "value": value,
                "function_id": function_id,
                "now": now_epoch_ms(),
                "record_name": record_name,
            },
        )
        return None if row is None or row[0] is None else int(row[0])


def sent_from_row(row: Any) -> Sent:
    """``send_message``'s row: (outcome, name, queue_name, generation, sender_status)."""
    outcome, name, queue_name, generation, sender_status = tuple(row)
    wake = None
    if name is not None:
        wake = Dispatch(name=name, queue_name=queue_name, generation=generation)
    return Sent(outcome=outcome, wake=wake, sender_status=sender_status)
