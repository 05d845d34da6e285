"""Turning tracing on or off, and the trace headers of a workflow's message: cheap to
call, and without the ``[otel]`` extra they import nothing and add nothing."""

from __future__ import annotations

import functools
from types import ModuleType

from celery_durable.error import DBOSInitializationError
from celery_durable.observability import probes

# False once a configuration turned tracing off (DBOSConfig "tracing": False).
_tracing_allowed = True


@functools.cache
def _tracing_module() -> ModuleType | None:
    try:
        from celery_durable.observability import tracing
    except ImportError:  # the [otel] extra is not installed
        return None
    return tracing


def configure_tracing(enabled: bool | None) -> None:
    """Traces this process's workflow executions and steps (``DBOSConfig["tracing"]``).

    None (the default) traces when ``opentelemetry-api`` is installed; False turns it
    off, here and in the headers of the messages this process publishes.
    """
    global _tracing_allowed
    _tracing_allowed = enabled is not False
    if not _tracing_allowed:
        probes.disable("tracing")
        return
    module = _tracing_module()
    if module is None:
        if enabled:
            raise DBOSInitializationError(
                'config["tracing"] is True but opentelemetry-api is not installed: '
                "pip install 'celery-durable[otel]'"
            )
        return
    if probes.enabled("tracing") is None:
        probes.enable("tracing", module.Tracing())


# The W3C trace context's headers, the ones a stored carrier may give.
_W3C_HEADERS = ("traceparent", "tracestate")


def trace_headers(stored: object = None) -> dict[str, str] | None:
    """The headers that carry the current trace context to a workflow's execution (None
    outside any span, or without tracing), or, given a ``stored`` carrier (the
    ``dbos.otelContext`` attribute a client's ``otel_context`` recorded), its W3C keys."""
    if not _tracing_allowed:
        return None
    if isinstance(stored, dict):
        given = {key: stored[key] for key in _W3C_HEADERS if isinstance(stored.get(key), str)}
        if given:
            return given
    module = _tracing_module()
    if module is None:
        return None
    headers: dict[str, str] = module.current_headers()
    return headers or None
