"""Schema version 13: workflows started by a Celery canvas (chain, group, chord).

- ``workflow_canvas``: what the canvas message of a workflow asked Celery to do once
  the workflow's task ends (its ``chain``, ``link``, ``link_error``, ``chord``, group
  and reply options, as JSON), recorded by the message's first delivery and fired once,
  by the delivery that finds the workflow finished. ``claimed_at_epoch_ms`` is the
  firing's lease (a delivery that claimed it and died is replaced after the lease);
  ``fired_at_epoch_ms`` says it was fired. No foreign key: the row is written before
  the workflow's (a crash in between leaves it for the message's redelivery).

Written only for a workflow a canvas started; the completion of any workflow reads
whether it has one (an index probe in the same statement).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V13 = f"""
CREATE TABLE {SCHEMA}.workflow_canvas (
    workflow_uuid text PRIMARY KEY,
    request text NOT NULL,
    created_at_epoch_ms bigint NOT NULL,
    claimed_at_epoch_ms bigint,
    fired_at_epoch_ms bigint
);
CREATE INDEX workflow_canvas_unfired_idx
    ON {SCHEMA}.workflow_canvas (created_at_epoch_ms) WHERE fired_at_epoch_ms IS NULL;
"""
