"""DBOS 3.4's process-level odds and ends, on our machinery: the executor id, tracing
(through :mod:`celery_durable.observability`, an optional extra) and the ambient
authentication."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from celery_durable.engine.context import (
    Identity,
    authentication,
    current_step,
    current_workflow,
)
from celery_durable.service.trace_context import tracing_module

if TYPE_CHECKING:
    from celery_durable.service.workflows import WorkflowService


def executor_id(service: WorkflowService | None) -> str:
    """This process's name in ``workflow_status.executor_id``: the configured
    ``executor_id``, else ``host:pid`` (as the engine names it)."""
    configured = service.runtime.process.config.get("executor_id") if service else None
    return str(configured or f"{socket.gethostname()}:{os.getpid()}")


def current_span() -> Any:
    """The current OpenTelemetry span: the running step attempt's or workflow
    execution's while tracing is on (``celery-durable[otel]``), else OpenTelemetry's
    invalid span."""
    return tracing_module().trace.get_current_span()


def tracer() -> Any:
    """An OpenTelemetry tracer of the ``celery_durable`` instrumentation."""
    tracing = tracing_module()
    return tracing.trace.get_tracer(tracing.TRACER_NAME)


def set_authentication(user: str | None, roles: list[str] | None) -> None:
    """Acts as ``user`` with ``roles`` from here on, as DBOS: in the innermost scope,
    the enclosing ``DBOSContextSetAuth`` block (in this context), else the running
    workflow (all of it: see ``WorkflowContext.act_as``), else this context."""
    workflow = current_workflow.get()
    if authentication.get() is None and workflow is not None and current_step.get() is None:
        workflow.act_as(user, roles)
        return
    authentication.set(Identity(user=user, roles=roles, assumed_role=None))
