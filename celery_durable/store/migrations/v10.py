"""Schema version 10: what the tools show (the CLI, the dashboard).

- ``operation_outputs.max_attempts``: a step's attempt budget (its ``max_attempts``, or
  1 when retries are off), written with its checkpoint, so that an attempt reads "3/4"
  (attempt 3 of 4) everywhere. NULL for operations that are not retried (transactions,
  messages, sleeps, ...) and for steps recorded before this version.
- ``workflow_status.forked_from``: the workflow a fork copied (NULL: not a fork), and
  an index to find a workflow's forks.
- ``version_last_seen``: when a worker of each application version was last seen,
  written when a worker leaves (warm shutdown deletes its ``worker_versions`` row, so
  that its version stops counting as running at once).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V10 = f"""
ALTER TABLE {SCHEMA}.operation_outputs ADD COLUMN max_attempts integer;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN forked_from text;
CREATE INDEX workflow_status_forked_from_idx
    ON {SCHEMA}.workflow_status (forked_from) WHERE forked_from IS NOT NULL;
CREATE TABLE {SCHEMA}.version_last_seen (
    application_version text PRIMARY KEY,
    last_seen_epoch_ms bigint NOT NULL,
    executor_id text NOT NULL
);
"""
