"""Trace context handed to workflows as they are enqueued: an OpenTelemetry
``Context`` made current (``PropagateOtelContext``, ``EnqueueOptions["otel_context"]``)
and its W3C carrier. OpenTelemetry (an optional extra) is imported only when used."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery_durable.error import DBOSException


def tracing_module() -> Any:
    """The tracing module of :mod:`celery_durable.observability`.

    Raises:
        DBOSException: the ``[otel]`` extra is not installed.
    """
    try:
        from celery_durable.observability import tracing
    except ImportError as error:  # the optional extra is not installed
        raise DBOSException(
            "Tracing needs OpenTelemetry: pip install 'celery-durable[otel]' "
            f"(see docs/observability.md); {error}"
        ) from error
    return tracing


@contextlib.contextmanager
def propagated_context(context: Any | None) -> Iterator[None]:
    """Workflows started in the block continue ``context``'s trace (the current one
    already travels in every workflow's Celery message)."""
    if context is None:
        yield
        return
    otel_context = tracing_module().context
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def trace_carrier(context: Any) -> dict[str, str] | None:
    """An OpenTelemetry ``Context``'s W3C trace context (``traceparent``, ``tracestate``)
    as a carrier, or None when it has no valid span: what DBOS 3.4 records as the
    ``dbos.otelContext`` attribute of a workflow enqueued with ``otel_context``.

    Raises:
        DBOSException: ``context`` is not an OpenTelemetry ``Context``.
    """
    tracing = tracing_module()
    if not isinstance(context, tracing.context.Context):
        raise DBOSException(
            f"otel_context must be an OpenTelemetry Context (opentelemetry.context), "
            f"not {context!r}"
        )
    carrier: dict[str, str] = tracing.trace_context_carrier(context)
    return carrier or None
