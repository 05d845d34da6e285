"""The statements of messages, events and streams (see schema version 5); the names
they share with the engine (channels, the None topic) are in
:mod:`celery_durable.store.channels`."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.sql.driver import driver_sql

SEND_MESSAGE = text(
    f"SELECT outcome, name, queue_name, generation, sender_status "
    f"FROM {SCHEMA}.send_message("
    ":destination, :topic, :message_uuid, :message, :now, :sender, :sender_function_id)"
)

SET_EVENT = text(
    f"SELECT outcome, workflow_uuid, name, queue_name, generation "
    f"FROM {SCHEMA}.set_event(:workflow_uuid, :function_id, :key, :value, :now, :record)"
)

WRITE_STREAM = text(
    f"SELECT {SCHEMA}.write_stream(:workflow_uuid, :key, :value, :function_id, :now, "
    ':record_name) AS "offset"'
)

RESCHEDULE_TO_WAIT = text(
    f"SELECT dispatch_generation, next_dispatch_at_epoch_ms, dispatch_parked "
    f"FROM {SCHEMA}.reschedule_to_wait("
    ":workflow_uuid, :due, :parked, :now, :wait_kind, :target, :wait_key)"
)

# A wait's deadline, recorded once as its DBOS.sleep (a replay keeps the first): it
# completes at once; the wait's own operation starts when it was recorded, and
# completes when the message or event arrives (as DBOS times them).
_WAIT_STARTED = f"""
        COALESCE((SELECT started_at_epoch_ms FROM {SCHEMA}.operation_outputs
                  WHERE workflow_uuid = :workflow_uuid
                    AND function_id = :deadline_function_id), :now)
    """
_RECORD_DEADLINE = f"""
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, output, attempts,
            started_at_epoch_ms, completed_at_epoch_ms)
        VALUES (:workflow_uuid, :deadline_function_id, 'DBOS.sleep', :deadline, 1, :now, :now)
        ON CONFLICT (workflow_uuid, function_id) DO NOTHING
    """

# In workflow code, one round trip: records the wait's deadline (once: a replay keeps
# the first), consumes the oldest unconsumed message of the topic and checkpoints it.
# Returns the message's text and whether one was received.
RECV_MESSAGE = text(
    f"""
    WITH deadline AS ({_RECORD_DEADLINE}), consumed AS (
        UPDATE {SCHEMA}.notifications
        SET consumed_by_function_id = :function_id
        WHERE message_id = (
            SELECT message_id FROM {SCHEMA}.notifications
            WHERE destination_uuid = :workflow_uuid AND topic = :topic
              AND consumed_by_function_id IS NULL
            ORDER BY message_id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING message
    ), recorded AS (
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, output, attempts,
            started_at_epoch_ms, completed_at_epoch_ms)
        SELECT :workflow_uuid, :function_id, 'DBOS.recv', message, 1,
               {_WAIT_STARTED}, :now
        FROM consumed
        RETURNING output
    )
    SELECT (SELECT output FROM recorded) AS value,
           EXISTS (SELECT 1 FROM recorded) AS found,
           (SELECT status FROM {SCHEMA}.workflow_status
            WHERE workflow_uuid = :workflow_uuid) AS workflow_status
    """
)

# In workflow code, one round trip: records the wait's deadline (once), reads the
# event and, if it is set, checkpoints it.
GET_EVENT_IN_WORKFLOW = text(
    f"""
    WITH deadline AS ({_RECORD_DEADLINE}), event AS (
        SELECT value FROM {SCHEMA}.workflow_events WHERE workflow_uuid = :target AND key = :key
    ), recorded AS (
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, output, attempts,
            started_at_epoch_ms, completed_at_epoch_ms)
        SELECT :workflow_uuid, :function_id, 'DBOS.getEvent', value, 1,
               {_WAIT_STARTED}, :now
        FROM event
        RETURNING output
    )
    SELECT (SELECT output FROM recorded) AS value,
           EXISTS (SELECT 1 FROM recorded) AS found,
           (SELECT status FROM {SCHEMA}.workflow_status
            WHERE workflow_uuid = :workflow_uuid) AS workflow_status
    """
)

GET_EVENT = text(
    f"SELECT value FROM {SCHEMA}.workflow_events WHERE workflow_uuid = :workflow_uuid "
    "AND key = :key"
)

GET_ALL_EVENTS = text(
    f"SELECT key, value FROM {SCHEMA}.workflow_events WHERE workflow_uuid = :workflow_uuid "
    "ORDER BY key"
)

# The workflow's status (NULL: no such workflow) and the stream's value at :offset.
READ_STREAM = text(
    f"""
    SELECT w.status, s.value
    FROM {SCHEMA}.workflow_status AS w
    LEFT JOIN {SCHEMA}.streams AS s
      ON s.workflow_uuid = w.workflow_uuid AND s.key = :key AND s."offset" = :offset
    WHERE w.workflow_uuid = :workflow_uuid
    """
)

# Sent on an execution's own connection (see WorkflowExecution).
SEND_MESSAGE_SQL = driver_sql(SEND_MESSAGE)
SET_EVENT_SQL = driver_sql(SET_EVENT)
WRITE_STREAM_SQL = driver_sql(WRITE_STREAM)
RECV_MESSAGE_SQL = driver_sql(RECV_MESSAGE)
RESCHEDULE_TO_WAIT_SQL = driver_sql(RESCHEDULE_TO_WAIT)
GET_EVENT_IN_WORKFLOW_SQL = driver_sql(GET_EVENT_IN_WORKFLOW)
