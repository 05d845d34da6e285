"""Schema version 12: what DBOS 3.4's ``WorkflowStatus`` and ``list_workflows`` read.

- ``workflow_status.attributes``: the JSON object ``update_workflow_attributes`` sets
  (NULL: none), with a GIN index for ``list_workflows(attributes=...)``'s containment
  filter (``@>``).
- ``workflow_status.schedule_name``: the schedule that created the workflow (NULL: not
  a schedule's tick), written with the row's insert.
- An index on ``authenticated_user`` for ``list_workflows(user=...)``.
- ``application_versions``: every application version a process launched or a worker
  started with, and its timestamp; the newest is the latest version
  (``list_application_versions``, ``get_latest_application_version``;
  ``set_latest_application_version`` makes one the newest).

None of these is written on a step's path.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V12 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN attributes jsonb;
CREATE INDEX workflow_status_attributes_idx
    ON {SCHEMA}.workflow_status USING GIN (attributes) WHERE attributes IS NOT NULL;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN schedule_name text;
CREATE INDEX workflow_status_schedule_name_idx
    ON {SCHEMA}.workflow_status (schedule_name) WHERE schedule_name IS NOT NULL;
CREATE TABLE {SCHEMA}.application_versions (
    version_id text PRIMARY KEY,
    version_name text NOT NULL UNIQUE,
    version_timestamp bigint NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX workflow_status_authenticated_user_idx
    ON {SCHEMA}.workflow_status (authenticated_user) WHERE authenticated_user IS NOT NULL;
"""
