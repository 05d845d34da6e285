"""Schema version 15: ``send_bulk``, DBOS 3.4's ``send_bulk`` and ``send(send_to_forks=)``.

``send_bulk`` sends many messages in one transaction: every destination must exist
(else nothing is sent and one ``missing`` row names those that do not); with
``p_to_forks`` each message also goes to every workflow recursively forked from its
destination (``forked_from``) that exists now. A message's id is its key (the idempotency
key, else a random one the caller chose) suffixed with ``::`` and the recipient, as
``send_message``'s. The
``(destination, topic)`` locks are taken in one sorted pass, so two bulk sends cannot
deadlock. In workflow code (``p_sender``) the send is one recorded operation named
``p_function_name``; a replay sends nothing. Returns a ``sent`` row per recipient
woken from its wait in ``recv``, one ``replayed`` or ``missing`` row, else one
``done`` row; each carries the sender's status (a cancelled sender stops there).

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V15 = f"""
CREATE FUNCTION {SCHEMA}.send_bulk(
    p_destinations text[], p_topics text[], p_keys text[], p_messages text[],
    p_now_epoch_ms bigint, p_sender text, p_sender_function_id integer,
    p_function_name text, p_to_forks boolean
) RETURNS TABLE (
    outcome text, destination text, name text, queue_name text, generation integer,
    sender_status text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_sender_status text;
    v_missing text;
    v_dests text[] := '{{}}';
    v_topics text[] := '{{}}';
    v_uuids text[] := '{{}}';
    v_messages text[] := '{{}}';
    v_dest text;
    i integer;
BEGIN
    IF p_sender IS NOT NULL THEN
        SELECT w.status INTO v_sender_status
        FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = p_sender;
        IF EXISTS (
            SELECT 1 FROM {SCHEMA}.operation_outputs AS o
            WHERE o.workflow_uuid = p_sender AND o.function_id = p_sender_function_id
        ) THEN
            RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::text, NULL::text,
                NULL::integer, v_sender_status;
            RETURN;
        END IF;
    END IF;
    SELECT string_agg(ds.d, ', ' ORDER BY ds.d) INTO v_missing
    FROM (SELECT DISTINCT unnest(p_destinations) AS d) AS ds
    WHERE NOT EXISTS (
        SELECT 1 FROM {SCHEMA}.workflow_status AS w WHERE w.workflow_uuid = ds.d);
    IF v_missing IS NOT NULL THEN
        RETURN QUERY SELECT 'missing'::text, v_missing, NULL::text, NULL::text,
            NULL::integer, v_sender_status;
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_destinations, 1), 0) LOOP
        FOR v_dest IN
            SELECT p_destinations[i]
            UNION ALL
            (WITH RECURSIVE forks(id) AS (
                SELECT w.workflow_uuid FROM {SCHEMA}.workflow_status AS w
                WHERE p_to_forks AND w.forked_from = p_destinations[i]
                UNION
                SELECT w.workflow_uuid FROM {SCHEMA}.workflow_status AS w
                JOIN forks ON w.forked_from = forks.id
            )
            SELECT forks.id FROM forks WHERE forks.id <> p_destinations[i] ORDER BY forks.id)
        LOOP
            v_dests := v_dests || v_dest;
            v_topics := v_topics || p_topics[i];
            v_uuids := v_uuids || (p_keys[i] || '::' || v_dest);
            v_messages := v_messages || p_messages[i];
        END LOOP;
    END LOOP;
    PERFORM pg_advisory_xact_lock(locks.h) FROM (
        SELECT DISTINCT hashtextextended('celery_durable.msg:' || x.d || '::' || x.t, 0) AS h
        FROM unnest(v_dests, v_topics) AS x(d, t) ORDER BY 1) AS locks;
    FOR i IN 1 .. coalesce(array_length(v_dests, 1), 0) LOOP
        INSERT INTO {SCHEMA}.notifications (
            message_uuid, destination_uuid, topic, message, created_at_epoch_ms)
        VALUES (v_uuids[i], v_dests[i], v_topics[i], v_messages[i], p_now_epoch_ms)
        ON CONFLICT (message_uuid) DO NOTHING;
        IF FOUND THEN
            PERFORM pg_notify('celery_durable_messages', v_dests[i] || '::' || v_topics[i]);
            RETURN QUERY
            WITH woken AS (
                UPDATE {SCHEMA}.workflow_status AS w
                SET dispatch_generation = w.dispatch_generation + 1,
                    next_dispatch_at_epoch_ms = p_now_epoch_ms,
                    dispatch_parked = false,
                    wait_key = NULL,
                    updated_at_epoch_ms = p_now_epoch_ms
                WHERE w.workflow_uuid = v_dests[i] AND w.status = 'PENDING'
                  AND NOT w.execution_active AND w.wait_key = 'msg:' || v_topics[i]
                RETURNING w.workflow_uuid, w.name, w.queue_name, w.dispatch_generation
            )
            SELECT 'sent'::text, woken.workflow_uuid, woken.name, woken.queue_name,
                   woken.dispatch_generation, v_sender_status
            FROM woken;
        END IF;
    END LOOP;
    IF p_sender IS NOT NULL THEN
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, attempts, started_at_epoch_ms,
            completed_at_epoch_ms)
        VALUES (p_sender, p_sender_function_id, p_function_name, 1, p_now_epoch_ms,
                p_now_epoch_ms);
    END IF;
    RETURN QUERY SELECT 'done'::text, NULL::text, NULL::text, NULL::text, NULL::integer,
        v_sender_status;
END;
$$;
"""
