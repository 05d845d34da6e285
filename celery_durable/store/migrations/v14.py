"""Schema version 14: DBOS 3.4's debouncing (``Debouncer``, ``DebouncerClient``).

- ``workflow_status.is_debounced``: the workflow's deduplication id is a debounce key
  (``{workflow name}-{key}``), held while it is DELAYED; a later debounce of the key
  moves its start and replaces its inputs.
- ``workflow_status.debounce_deadline_epoch_ms``: the latest start a debounce may move
  it to (``debounce_timeout_sec``; NULL: none).

Neither is written on a step's path.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V14 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN is_debounced boolean NOT NULL DEFAULT false;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN debounce_deadline_epoch_ms bigint;
"""
