"""Debouncing (DBOS 3.4's ``Debouncer``): one transaction per debounce, serialized per
(queue, key) by a transaction-level advisory lock (see ``DebounceStore``)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

# The first key of the two-key advisory locks debounces take (its own key space).
DEBOUNCE_LOCK_CLASS = 1_684_366_947

LOCK_KEY = text(
    f"SELECT pg_advisory_xact_lock({DEBOUNCE_LOCK_CLASS}, "
    "hashtext(:queue_name || '/' || :deduplication_id))"
)

# Moves a DELAYED debounced workflow's start (never past its deadline) and replaces its
# inputs: only the same workflow's, so two names whose keys collide never mix.
BOUNCE = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET next_dispatch_at_epoch_ms = CASE
            WHEN debounce_deadline_epoch_ms IS NOT NULL
                 AND debounce_deadline_epoch_ms < :delay_until
            THEN debounce_deadline_epoch_ms ELSE :delay_until END,
        inputs = :inputs, updated_at_epoch_ms = :now
    WHERE queue_name = :queue_name AND deduplication_id = :deduplication_id
      AND status = 'DELAYED' AND is_debounced AND name = :name
    RETURNING workflow_uuid
    """
)

# The active workflow holding the key, if any.
HOLDER = text(
    f"""
    SELECT workflow_uuid, name, status, is_debounced FROM {SCHEMA}.workflow_status
    WHERE queue_name = :queue_name AND deduplication_id = :deduplication_id
      AND status IN ('DELAYED', 'ENQUEUED', 'PENDING')
    LIMIT 1
    """
)

# A debounced workflow that has started to run gives its key up: the next debounce of
# the key starts a fresh workflow (DBOS clears the key when the delay ends).
RELEASE_KEY = text(
    f"""
    UPDATE {SCHEMA}.workflow_status SET deduplication_id = NULL
    WHERE workflow_uuid = :workflow_uuid AND is_debounced
      AND status IN ('ENQUEUED', 'PENDING')
    """
)

# A workflow just inserted (DELAYED) becomes the key's debounced holder.
MARK_DEBOUNCED = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET is_debounced = true, debounce_deadline_epoch_ms = :deadline
    WHERE workflow_uuid = :workflow_uuid AND status = 'DELAYED'
    """
)
