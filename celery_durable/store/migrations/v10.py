"""Schema version 10: what the tools show (the CLI, the dashboard).

- ``operation_outputs.max_attempts``: a step's attempt budget (its ``max_attempts``, or
  1 when retries are off), written with its checkpoint, so that an attempt reads "3/4"
  (attempt 3 of 4) everywhere. NULL for operations that are not retried (transactions,
  messages, sleeps, ...) and for steps recorded before this version.
- ``workflow_status.forked_from``: the workflow a fork copied (NULL: not a fork), and
  an index to find a workflow's forks.
- ``version_last_seen``: when a worker of each application version was last seen. A
  worker's ``worker_versions`` row is deleted when it leaves (warm shutdown: its version
  stops counting as running at once) or, after a crash, by a sweep a day later; a
  trigger keeps each deleted row's last sighting here (the warm shutdown's statement
  records its own time too).

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

CREATE FUNCTION {SCHEMA}.remember_version_seen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {SCHEMA}.version_last_seen AS s
        (application_version, last_seen_epoch_ms, executor_id)
    VALUES (OLD.application_version, OLD.last_seen_epoch_ms, OLD.executor_id)
    ON CONFLICT (application_version) DO UPDATE
    SET last_seen_epoch_ms = GREATEST(s.last_seen_epoch_ms, EXCLUDED.last_seen_epoch_ms),
        executor_id = CASE WHEN EXCLUDED.last_seen_epoch_ms >= s.last_seen_epoch_ms
                           THEN EXCLUDED.executor_id ELSE s.executor_id END;
    RETURN OLD;
END;
$$;

CREATE TRIGGER worker_versions_remembered AFTER DELETE ON {SCHEMA}.worker_versions
FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.remember_version_seen();
"""
