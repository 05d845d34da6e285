"""Schema version 5: messages, events and streams (DBOS's ``send``/``recv``,
``set_event``/``get_event`` and ``write_stream``/``read_stream``).

A workflow that waits inside its code (``recv``, or ``get_event`` on another workflow)
is rescheduled like a sleep, with ``wait_key`` saying what it waits for; ``send`` and
``set_event`` publish it again at once. Both sides of a wait take a transaction-level
advisory lock on what is waited for, so a message or event that arrives while the
workflow is deciding to wait is never missed: either the waiter sees it, or the writer
sees the waiter. Writers also ``pg_notify`` for waiters outside any workflow.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V5 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN wait_key text;
CREATE INDEX workflow_status_wait_idx
    ON {SCHEMA}.workflow_status (wait_key) WHERE wait_key IS NOT NULL;

-- Messages: FIFO per (destination, topic) by message_id; consumed once, and kept.
CREATE TABLE {SCHEMA}.notifications (
    message_id bigserial PRIMARY KEY,
    message_uuid text NOT NULL UNIQUE,
    destination_uuid text NOT NULL,
    topic text NOT NULL,
    message text NOT NULL,
    created_at_epoch_ms bigint NOT NULL,
    consumed_by_function_id integer
);
CREATE INDEX notifications_unconsumed_idx
    ON {SCHEMA}.notifications (destination_uuid, topic, message_id)
    WHERE consumed_by_function_id IS NULL;

-- Events: the latest value per key, and every value set (fork copies the history).
CREATE TABLE {SCHEMA}.workflow_events (
    workflow_uuid text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (workflow_uuid, key)
);
CREATE TABLE {SCHEMA}.workflow_events_history (
    workflow_uuid text NOT NULL,
    function_id integer NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (workflow_uuid, function_id, key)
);

-- Streams: values in order from offset 0; the close marker is a value too.
CREATE TABLE {SCHEMA}.streams (
    workflow_uuid text NOT NULL,
    key text NOT NULL,
    "offset" integer NOT NULL,
    value text NOT NULL,
    function_id integer NOT NULL,
    PRIMARY KEY (workflow_uuid, key, "offset")
);

-- Sends a message; returns the destination's dispatch if it waited for this topic.
-- p_sender/p_sender_function_id: an in-workflow send, checkpointed in the same
-- transaction (a replay whose checkpoint exists sends nothing: 'replayed').
-- Outcomes: sent, duplicate (the message_uuid was sent before), missing, replayed.
CREATE FUNCTION {SCHEMA}.send_message(
    p_destination text, p_topic text, p_message_uuid text, p_message text,
    p_now_epoch_ms bigint, p_sender text, p_sender_function_id integer
) RETURNS TABLE (
    outcome text, name text, queue_name text, generation integer, sender_status text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    sent boolean;
BEGIN
    IF p_sender IS NOT NULL AND EXISTS (
        SELECT 1 FROM {SCHEMA}.operation_outputs AS o
        WHERE o.workflow_uuid = p_sender AND o.function_id = p_sender_function_id
    ) THEN
        RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::text, NULL::integer,
            (SELECT w.status FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_sender);
        RETURN;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_destination
    ) THEN
        RETURN QUERY SELECT 'missing'::text, NULL::text, NULL::text, NULL::integer, NULL::text;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('celery_durable.msg:' || p_destination || '::' || p_topic, 0));
    INSERT INTO {SCHEMA}.notifications (
        message_uuid, destination_uuid, topic, message, created_at_epoch_ms)
    VALUES (p_message_uuid, p_destination, p_topic, p_message, p_now_epoch_ms)
    ON CONFLICT (message_uuid) DO NOTHING;
    sent := FOUND;
    IF p_sender IS NOT NULL THEN
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, attempts, started_at_epoch_ms,
            completed_at_epoch_ms)
        VALUES (p_sender, p_sender_function_id, 'DBOS.send', 1, p_now_epoch_ms,
                p_now_epoch_ms);
    END IF;
    IF NOT sent THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::text, NULL::text, NULL::integer,
            (SELECT w.status FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_sender);
        RETURN;
    END IF;
    PERFORM pg_notify('celery_durable_messages', p_destination || '::' || p_topic);
    RETURN QUERY
    WITH woken AS (
        UPDATE {SCHEMA}.workflow_status AS w
        SET dispatch_generation = w.dispatch_generation + 1,
            next_dispatch_at_epoch_ms = p_now_epoch_ms,
            dispatch_parked = false,
            wait_key = NULL,
            updated_at_epoch_ms = p_now_epoch_ms
        WHERE w.workflow_uuid = p_destination AND w.status = 'PENDING'
          AND NOT w.execution_active AND w.wait_key = 'msg:' || p_topic
        RETURNING w.name, w.queue_name, w.dispatch_generation
    )
    SELECT 'sent'::text, woken.name, woken.queue_name, woken.dispatch_generation,
           (SELECT w.status FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_sender)
    FROM (SELECT 1) AS one LEFT JOIN woken ON true;
END;
$$;

-- Sets an event (the latest value and the history), checkpointed when p_record (in
-- workflow code; a step's set_event is part of the step). Returns the workflows that
-- waited for it ('woken'), or one 'replayed' row when the checkpoint existed.
CREATE FUNCTION {SCHEMA}.set_event(
    p_workflow_uuid text, p_function_id integer, p_key text, p_value text,
    p_now_epoch_ms bigint, p_record boolean
) RETURNS TABLE (
    outcome text, workflow_uuid text, name text, queue_name text, generation integer
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    IF p_record AND EXISTS (
        SELECT 1 FROM {SCHEMA}.operation_outputs AS o
        WHERE o.workflow_uuid = p_workflow_uuid AND o.function_id = p_function_id
    ) THEN
        RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::text, NULL::text,
                            NULL::integer;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('celery_durable.event:' || p_workflow_uuid || '::' || p_key, 0));
    INSERT INTO {SCHEMA}.workflow_events AS e (workflow_uuid, key, value)
    VALUES (p_workflow_uuid, p_key, p_value)
    ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value;
    INSERT INTO {SCHEMA}.workflow_events_history AS h (workflow_uuid, function_id, key, value)
    VALUES (p_workflow_uuid, p_function_id, p_key, p_value)
    ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value;
    IF p_record THEN
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, attempts, started_at_epoch_ms,
            completed_at_epoch_ms)
        VALUES (p_workflow_uuid, p_function_id, 'DBOS.setEvent', 1, p_now_epoch_ms,
                p_now_epoch_ms);
    END IF;
    PERFORM pg_notify('celery_durable_events', p_workflow_uuid || '::' || p_key);
    RETURN QUERY
    UPDATE {SCHEMA}.workflow_status AS w
    SET dispatch_generation = w.dispatch_generation + 1,
        next_dispatch_at_epoch_ms = p_now_epoch_ms,
        dispatch_parked = false,
        wait_key = NULL,
        updated_at_epoch_ms = p_now_epoch_ms
    WHERE w.wait_key = 'event:' || p_workflow_uuid || '::' || p_key
      AND w.status = 'PENDING' AND NOT w.execution_active
    RETURNING 'woken'::text, w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation;
END;
$$;

-- Releases a workflow that waits for a message (p_wait_kind 'msg', p_target its own id,
-- p_wait_key the topic) or an event ('event', the target workflow, the key) until
-- p_due, unless what it waits for is already there: then it is due at once. Under the
-- same lock as send_message and set_event (see above). Returns what
-- RESCHEDULE_WORKFLOW returns, and releases the fence in the same statement.
CREATE FUNCTION {SCHEMA}.reschedule_to_wait(
    p_workflow_uuid text, p_due_epoch_ms bigint, p_parked boolean, p_now_epoch_ms bigint,
    p_wait_kind text, p_target text, p_wait_key text
) RETURNS TABLE (
    dispatch_generation integer, next_dispatch_at_epoch_ms bigint, dispatch_parked boolean
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    ready boolean;
    waited text;
BEGIN
    IF p_wait_kind = 'msg' THEN
        PERFORM pg_advisory_xact_lock(
            hashtextextended('celery_durable.msg:' || p_target || '::' || p_wait_key, 0));
        ready := EXISTS (
            SELECT 1 FROM {SCHEMA}.notifications AS n
            WHERE n.destination_uuid = p_target AND n.topic = p_wait_key
              AND n.consumed_by_function_id IS NULL);
        waited := 'msg:' || p_wait_key;
    ELSE
        PERFORM pg_advisory_xact_lock(
            hashtextextended('celery_durable.event:' || p_target || '::' || p_wait_key, 0));
        ready := EXISTS (
            SELECT 1 FROM {SCHEMA}.workflow_events AS e
            WHERE e.workflow_uuid = p_target AND e.key = p_wait_key);
        waited := 'event:' || p_target || '::' || p_wait_key;
    END IF;
    RETURN QUERY
    UPDATE {SCHEMA}.workflow_status AS w
    SET execution_active = false,
        dispatch_generation = w.dispatch_generation + 1,
        next_dispatch_at_epoch_ms =
            CASE WHEN ready OR w.wake_requested THEN p_now_epoch_ms ELSE p_due_epoch_ms END,
        dispatch_parked = p_parked AND NOT (ready OR w.wake_requested),
        wake_requested = false,
        wait_key = CASE WHEN ready THEN NULL ELSE waited END,
        updated_at_epoch_ms = p_now_epoch_ms
    WHERE w.workflow_uuid = p_workflow_uuid AND w.status = 'PENDING'
    RETURNING w.dispatch_generation, w.next_dispatch_at_epoch_ms, w.dispatch_parked;
    IF FOUND THEN
        PERFORM pg_advisory_unlock(hashtextextended(p_workflow_uuid, 0));
    END IF;
END;
$$;

-- Appends a value to a stream (offsets from 0, serialized per stream by a lock), and
-- checkpoints it when p_record ('DBOS.writeStream' or 'DBOS.closeStream'). Returns the
-- offset written, or NULL on a replay.
CREATE FUNCTION {SCHEMA}.write_stream(
    p_workflow_uuid text, p_key text, p_value text, p_function_id integer,
    p_now_epoch_ms bigint, p_record_name text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    written integer;
BEGIN
    IF p_record_name IS NOT NULL AND EXISTS (
        SELECT 1 FROM {SCHEMA}.operation_outputs AS o
        WHERE o.workflow_uuid = p_workflow_uuid AND o.function_id = p_function_id
    ) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('celery_durable.stream:' || p_workflow_uuid || '::' || p_key, 0));
    INSERT INTO {SCHEMA}.streams AS s (workflow_uuid, key, "offset", value, function_id)
    SELECT p_workflow_uuid, p_key,
           COALESCE((SELECT max(s2."offset") FROM {SCHEMA}.streams AS s2
                     WHERE s2.workflow_uuid = p_workflow_uuid AND s2.key = p_key), -1) + 1,
           p_value, p_function_id
    RETURNING s."offset" INTO written;
    IF p_record_name IS NOT NULL THEN
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, attempts, started_at_epoch_ms,
            completed_at_epoch_ms)
        VALUES (p_workflow_uuid, p_function_id, p_record_name, 1, p_now_epoch_ms,
                p_now_epoch_ms);
    END IF;
    PERFORM pg_notify('celery_durable_streams', p_workflow_uuid || '::' || p_key);
    RETURN written;
END;
$$;
"""
