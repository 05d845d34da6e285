"""DBOS 3.4's remaining context managers and names: ``DBOSContextEnsure``,
``PropagateOtelContext`` and ``KafkaMessage``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery_durable.service import trace_context


class DBOSContextEnsure:
    """Accepted for DBOS programs: DBOS makes sure a context exists in the block; ours
    always does (the context variables have defaults), so the block changes nothing."""

    def __enter__(self) -> DBOSContextEnsure:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class PropagateOtelContext:
    """Workflows started or enqueued in this block continue ``context``'s trace (an
    OpenTelemetry ``Context``), or the current one when None.

    The current trace context already travels in every workflow's Celery message (see
    docs/observability.md), children's included, so without ``context`` the block
    changes nothing; with one, it is the current context while the block runs. Needs
    ``celery-durable[otel]`` when ``context`` is given.
    """

    def __init__(self, context: Any | None = None) -> None:
        self.context = context
        self._block: Any = None

    def __enter__(self) -> PropagateOtelContext:
        self._block = trace_context.propagated_context(self.context)
        self._block.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._block.__exit__(*exc_info)


@dataclass
class KafkaMessage:
    """DBOS's Kafka message type, for type annotations in ported code (celery_durable
    has no Kafka consumer: ``DBOS.kafka_consumer`` says what to use instead)."""

    headers: list[tuple[str, str | bytes]] | None
    key: str | bytes | None
    latency: float | None
    leader_epoch: int | None
    offset: int | None
    partition: int | None
    timestamp: tuple[int, int]
    topic: str | None
    value: str | bytes | None
