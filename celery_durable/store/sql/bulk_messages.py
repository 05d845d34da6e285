"""The statement of ``send_bulk`` (see schema version 13)."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.sql.driver import driver_sql

SEND_BULK = text(
    f"SELECT outcome, destination, name, queue_name, generation, sender_status "
    f"FROM {SCHEMA}.send_bulk(:destinations, :topics, :keys, :messages, :now, :sender, "
    ":sender_function_id, :function_name, :to_forks)"
)

# Sent on an execution's own connection (see WorkflowExecution).
SEND_BULK_SQL = driver_sql(SEND_BULK)
