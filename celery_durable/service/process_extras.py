"""DBOS 3.4's process-level odds and ends, on our machinery: the executor id, tracing
(through :mod:`celery_durable.observability`, an optional extra) and the ambient
authentication."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from celery_durable.engine.context import (
    Identity,
    authentication,
    current_step,
    current_workflow,
)
from celery_durable.error import DBOSException

if TYPE_CHECKING:
    from celery_durable.service.workflows import WorkflowService


def executor_id(service: WorkflowService | None) -> str:
    """This process's name in ``workflow_status.executor_id``: the configured
    ``executor_id``, else ``host:pid`` (as the engine names it)."""
    configured = service.runtime.process.config.get("executor_id") if service else None
    return str(configured or f"{socket.gethostname()}:{os.getpid()}")


def _tracing_module() -> Any:
    try:
        from celery_durable.observability import tracing
    except ImportError as error:  # the optional extra is not installed
        raise DBOSException(
            "Tracing needs OpenTelemetry: pip install 'celery-durable[otel]' "
            f"(see docs/observability.md); {error}"
        ) from error
    return tracing


def current_span() -> Any:
    """The current OpenTelemetry span: the running step attempt's or workflow
    execution's while tracing is on (``celery-durable[otel]``), else OpenTelemetry's
    invalid span."""
    return _tracing_module().trace.get_current_span()


def tracer() -> Any:
    """An OpenTelemetry tracer of the ``celery_durable`` instrumentation."""
    tracing = _tracing_module()
    return tracing.trace.get_tracer(tracing.TRACER_NAME)


@contextlib.contextmanager
def propagated_context(context: Any | None) -> Iterator[None]:
    """Workflows started in the block continue ``context``'s trace (the current one
    already travels in every workflow's Celery message)."""
    if context is None:
        yield
        return
    otel_context = _tracing_module().context
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def set_authentication(user: str | None, roles: list[str] | None) -> None:
    """Acts as ``user`` with ``roles`` from here on, as DBOS: in the innermost scope,
    the enclosing ``DBOSContextSetAuth`` block (in this context), else the running
    workflow (all of it: see ``WorkflowContext.act_as``), else this context."""
    workflow = current_workflow.get()
    if authentication.get() is None and workflow is not None and current_step.get() is None:
        workflow.act_as(user, roles)
        return
    authentication.set(Identity(user=user, roles=roles, assumed_role=None))
