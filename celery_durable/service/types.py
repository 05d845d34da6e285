"""The machinery's types that appear in the facades' signatures and state, re-exported
so the layers above reach them through this package only."""

from __future__ import annotations

from celery_durable.engine.registry import DEFAULT_MAX_RECOVERY_ATTEMPTS, Registry, WorkflowSpec
from celery_durable.integration.config import DBOSConfig
from celery_durable.integration.enqueue import EnqueueSettings
from celery_durable.store import QueueLimits, Redispatch, WorkerVersion
from celery_durable.store.queue_store import OnConflict

__all__ = [
    "DEFAULT_MAX_RECOVERY_ATTEMPTS",
    "DBOSConfig",
    "EnqueueSettings",
    "OnConflict",
    "QueueLimits",
    "Redispatch",
    "Registry",
    "WorkerVersion",
    "WorkflowSpec",
]
