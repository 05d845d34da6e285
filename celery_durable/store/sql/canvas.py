"""Workflows started by a Celery canvas: their recorded callbacks, and firing them once
(see :mod:`celery_durable.integration.canvas`)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

_REPLACED = "c.fired_at_epoch_ms IS NOT NULL AND c.request <> EXCLUDED.request"

# The canvas message's first delivery records what to fire. A redelivery of the same
# message changes nothing; a canvas that names a workflow already fired for another
# canvas (an idempotent workflow id used again) replaces it, to be fired once more.
# Returns the request recorded now: another one means a canvas still waits (one per
# workflow), and this one's callbacks are not recorded.
ATTACH_CANVAS = text(
    f"""
    INSERT INTO {SCHEMA}.workflow_canvas AS c (workflow_uuid, request, created_at_epoch_ms)
    VALUES (:workflow_uuid, :request, :now)
    ON CONFLICT (workflow_uuid) DO UPDATE
    SET request = CASE WHEN {_REPLACED} THEN EXCLUDED.request ELSE c.request END,
        created_at_epoch_ms = CASE WHEN {_REPLACED} THEN EXCLUDED.created_at_epoch_ms
                                   ELSE c.created_at_epoch_ms END,
        claimed_at_epoch_ms = CASE WHEN {_REPLACED} THEN NULL ELSE c.claimed_at_epoch_ms END,
        fired_at_epoch_ms = CASE WHEN {_REPLACED} THEN NULL ELSE c.fired_at_epoch_ms END
    RETURNING c.request
    """
)

# Whoever finds the workflow finished claims the firing: once, unless the claimer's
# lease ran out before it confirmed (it died between claiming and firing).
CLAIM_FIRING = text(
    f"""
    UPDATE {SCHEMA}.workflow_canvas AS c
    SET claimed_at_epoch_ms = :now
    FROM {SCHEMA}.workflow_status AS w
    WHERE c.workflow_uuid = :workflow_uuid AND w.workflow_uuid = c.workflow_uuid
      AND c.fired_at_epoch_ms IS NULL
      AND (c.claimed_at_epoch_ms IS NULL OR c.claimed_at_epoch_ms < :now - :lease_ms)
      AND w.status NOT IN ('ENQUEUED', 'PENDING')
    RETURNING c.request, w.status, w.output, w.error
    """
)

CONFIRM_FIRING = text(
    f"UPDATE {SCHEMA}.workflow_canvas SET fired_at_epoch_ms = :now "
    "WHERE workflow_uuid = :workflow_uuid AND fired_at_epoch_ms IS NULL"
)

# For the recovery sweep: finished workflows whose callbacks nobody fired (the worker
# that finished it died first, or it ended without a delivery: cancelled, out of
# recovery attempts), past the grace period or the firing's lease.
OVERDUE_FIRINGS = text(
    f"""
    SELECT w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation AS generation
    FROM {SCHEMA}.workflow_canvas AS c
    JOIN {SCHEMA}.workflow_status AS w ON w.workflow_uuid = c.workflow_uuid
    WHERE c.fired_at_epoch_ms IS NULL
      AND w.status NOT IN ('ENQUEUED', 'PENDING')
      AND COALESCE(c.claimed_at_epoch_ms, w.updated_at_epoch_ms) < :now - :grace_ms
    ORDER BY c.created_at_epoch_ms
    LIMIT :limit
    """
)
