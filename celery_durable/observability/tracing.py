"""OpenTelemetry spans of workflow executions and step attempts (``celery-durable[otel]``).

Spans go to the application's TracerProvider: the tracer is taken from OpenTelemetry's
global provider, which resolves to the one the application sets, even later (until then,
spans are not recorded). The trace context travels with a workflow's Celery message: the
producer injects the current context into the message's headers (:func:`current_headers`,
with OpenTelemetry's configured propagator), Celery keeps them on the task's retries, and
an execution that starts with no current span continues the trace of its delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from celery import current_task
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from celery_durable.core.instrumentation import Observation

TRACER_NAME = "celery_durable"

WORKFLOW_ID = "celery_durable.workflow.id"
WORKFLOW_NAME = "celery_durable.workflow.name"
STEP_NAME = "celery_durable.step.name"
STEP_ID = "celery_durable.step.id"
ATTEMPT = "celery_durable.step.attempt"
OUTCOME = "celery_durable.outcome"

_FAILED = frozenset({"error", "retry", "interrupted"})


def _version() -> str | None:
    try:
        return version("celery-durable")
    except PackageNotFoundError:
        return None


def current_headers() -> dict[str, str]:
    """The current trace context as message headers (empty outside any span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_context_carrier(context: Any) -> dict[str, str]:
    """``context``'s W3C trace context (``traceparent``, ``tracestate``) as a carrier;
    empty when it has no valid span. Only the trace context: not baggage, which may be
    large and carry user data (as DBOS 3.4's ``EnqueueOptions["otel_context"]``)."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier


def _delivery_headers() -> Mapping[str, Any] | None:
    """The headers of the Celery message this thread executes, if any."""
    task = current_task
    if not task:
        return None
    headers = getattr(task.request, "headers", None)
    return headers if isinstance(headers, Mapping) else None


class Tracing:
    """A probe that opens one span per workflow execution and per step attempt; each
    is the current span while its code runs, so spans of the application's own
    instrumentation (an HTTP client in a step) nest under it."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME, _version(), provider)

    def workflow_started(self, workflow_id: str, name: str) -> Observation:
        parent = None
        kind = SpanKind.INTERNAL
        if not trace.get_current_span().get_span_context().is_valid:
            headers = _delivery_headers()
            if headers:
                parent = propagate.extract(headers)
                kind = SpanKind.CONSUMER
        span = self._tracer.start_span(
            f"workflow {name}",
            context=parent,
            kind=kind,
            attributes={WORKFLOW_ID: workflow_id, WORKFLOW_NAME: name},
        )
        return _Current(span)

    def step_started(
        self, workflow_id: str | None, step_name: str, step_id: int | None, attempt: int
    ) -> Observation:
        attributes: dict[str, str | int] = {STEP_NAME: step_name, ATTEMPT: attempt}
        if workflow_id is not None:
            attributes[WORKFLOW_ID] = workflow_id
        if step_id is not None:
            attributes[STEP_ID] = step_id
        return _Current(self._tracer.start_span(f"step {step_name}", attributes=attributes))

    def checkpoint_recorded(self, seconds: float) -> None:
        pass

    def recovered(self, count: int) -> None:
        pass


class _Current:
    """A span made current until it ends."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token = context.attach(trace.set_span_in_context(span))

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        span = self._span
        try:
            span.set_attribute(OUTCOME, outcome)
            if isinstance(error, Exception):
                span.record_exception(error)
            if outcome in _FAILED:
                span.set_status(Status(StatusCode.ERROR, repr(error) if error else outcome))
        finally:
            context.detach(self._token)
            span.end()
