"""The recovery sweep: publish again what PostgreSQL says should be running.

The broker is only transport: any message can be lost (a Redis restart without
persistence, a dropped connection), redelivered late, or never sent (a crash between
the commit and the publish). The sweep finds, in one statement, the workflows whose
delivery is overdue, whose owner died, or whose parked delay has come due, advances
their dispatch generation (older copies of their message become stale) and publishes
each once more. Every worker runs it at start-up and then every
``recovery_interval_seconds`` (:mod:`~celery_durable.integration.lifecycle`), one sweep
at a time across the fleet; beat's ``celery_durable.recover`` task and ``celery-durable
recover`` run the same sweep.
"""

from __future__ import annotations

import logging

from celery import Celery

from celery_durable.integration.publishing import publish_workflow
from celery_durable.store import Redispatch, SystemStore

logger = logging.getLogger("celery_durable.recovery")

DEFAULT_BATCH = 1000


def recover(
    store: SystemStore,
    app: Celery,
    *,
    grace_seconds: float,
    batch: int = DEFAULT_BATCH,
    app_version: str | None = None,
    executor_id: str | None = None,
) -> list[Redispatch]:
    """Runs one sweep; returns what it published.

    A worker's sweep names its ``app_version`` and ``executor_id``: it records that the
    worker runs that version and publishes only workflows of it (or of none); without
    them (beat, the CLI) workflows of every version are published.

    A publish that fails is logged and left for a later sweep (after the grace
    period): the workflow's row already says it is due.
    """
    redispatches = store.operations.recover_workflows(
        grace_ms=round(grace_seconds * 1000),
        limit=batch,
        app_version=app_version,
        executor_id=executor_id,
    )
    for redispatch in redispatches:
        try:
            publish_workflow(
                app,
                redispatch.name,
                redispatch.workflow_uuid,
                queue=redispatch.queue_name,
                generation=redispatch.generation,
            )
        except Exception:
            logger.exception(
                "Could not publish workflow %s again; a later sweep will retry",
                redispatch.workflow_uuid,
            )
            continue
        logger.info(
            "Recovery: published workflow %s (%s) again: %s",
            redispatch.workflow_uuid,
            redispatch.name,
            redispatch.reason,
        )
    return redispatches
