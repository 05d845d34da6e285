"""Schema version 3: operations are numbered from 1, as DBOS Transact numbers them.

Versions 1 and 2 numbered a workflow's operations from 0. Every recorded checkpoint
moves up by one, so that a workflow recorded before the upgrade replays with the new
numbering. (The primary key is checked row by row: the shift goes through negative ids.)
Child workflows keep the ids they were started with: replay reads them from their
checkpoints.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V3 = f"""
UPDATE {SCHEMA}.operation_outputs SET function_id = -function_id - 1;
UPDATE {SCHEMA}.operation_outputs SET function_id = -function_id;
"""
