"""What ``send_bulk`` takes and answers (shared by the pooled and the in-workflow path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.channels import ENQUEUED_CHANNEL
from celery_durable.store.rows import Dispatch
from celery_durable.store.sql import bulk_messages, recovery


@dataclass(frozen=True)
class Outgoing:
    """One message: its destination, stored topic, key (idempotency key, or a random
    one) and serialized text."""

    destination: str
    topic: str
    key: str
    message: str


@dataclass
class BulkSent:
    """``done`` (sent; ``wakes``: the recipients a message woke from ``recv``),
    ``replayed`` (the in-workflow send's checkpoint existed: nothing sent) or
    ``missing`` (``missing`` names the destinations that do not exist: nothing sent)."""

    outcome: str
    sender_status: str | None = None
    missing: str | None = None
    wakes: list[tuple[str, Dispatch]] = field(default_factory=list)


def bulk_params(messages: Sequence[Outgoing], to_forks: bool) -> dict[str, Any]:
    return {
        "destinations": [m.destination for m in messages],
        "topics": [m.topic for m in messages],
        "keys": [m.key for m in messages],
        "messages": [m.message for m in messages],
        "to_forks": to_forks,
    }


def bulk_from_rows(rows: Sequence[Any]) -> BulkSent:
    result = BulkSent(outcome="done")
    for outcome, destination, name, queue_name, generation, sender_status in rows:
        result.sender_status = sender_status
        if outcome == "sent":
            dispatch = Dispatch(name=name, queue_name=queue_name, generation=generation)
            result.wakes.append((destination, dispatch))
        elif outcome in ("replayed", "missing"):
            result.outcome, result.missing = outcome, destination
    return result


def send_bulk_on(connection: Connection, messages: Sequence[Outgoing], to_forks: bool) -> BulkSent:
    """Sends on a caller's connection, in its open transaction (``send_in_transaction``):
    nothing is visible until it commits, and a rollback sends nothing. A recipient the
    send woke is published by a worker's enqueue relay, which hears of it at the commit
    (the recovery sweep is the fallback)."""
    params = {
        **bulk_params(messages, to_forks),
        "now": now_epoch_ms(),
        "sender": None,
        "sender_function_id": None,
        "function_name": None,
    }
    sent = bulk_from_rows(connection.execute(bulk_messages.SEND_BULK, params).all())
    for workflow_id, dispatch in sent.wakes:
        connection.execute(
            recovery.NOTIFY_ENQUEUED,
            {"channel": ENQUEUED_CHANNEL, "payload": f"{workflow_id}:{dispatch.generation}"},
        )
    return sent
