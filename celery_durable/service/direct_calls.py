"""What a workflow's function needs of the configured service: a direct call, and the
Celery app its signatures name.

A protocol, so that the decorators (:mod:`~celery_durable.service.decorators`) and the
signatures (:mod:`~celery_durable.service.signatures`) reach the configured
:class:`~celery_durable.service.workflows.WorkflowService` without importing it (it
imports them).
"""

from __future__ import annotations

from typing import Any, Protocol

from celery import Celery

from celery_durable.engine.registry import WorkflowSpec


class DirectCalls(Protocol):
    """The configured service, as a workflow's wrapper and its signatures use it."""

    @property
    def celery(self) -> Celery:
        """The Celery app ``DBOS`` was configured with."""
        ...

    def call(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any: ...

    async def call_async(self, spec: WorkflowSpec, args: Any, kwargs: Any) -> Any: ...
