"""The application database's statements: the outputs of ``@DBOS.transaction``s."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA

GET_TRANSACTION_OUTPUT = text(
    f"SELECT function_name, output, error FROM {SCHEMA}.transaction_outputs "
    "WHERE workflow_uuid = :workflow_uuid AND function_id = :function_id"
)

# Inside the user's transaction: the outcome commits with the user's writes, or not at all.
RECORD_TRANSACTION_OUTPUT = text(
    f"""
    INSERT INTO {SCHEMA}.transaction_outputs (
        workflow_uuid, function_id, function_name, output, error, created_at_epoch_ms)
    VALUES (:workflow_uuid, :function_id, :function_name, :output, :error, :now)
    """
)
