"""The names of messaging that the store and the engine share: the channels of
pg_notify (the schema's functions notify them; see schema version 5) and the topic that
stands for None."""

from __future__ import annotations

# DBOS stores the topic None as this string (so that recv(None) matches only it).
NULL_TOPIC = "__null__topic__"

# The channels of pg_notify, for waiters outside any workflow; payload "{id}::{key}".
MESSAGES_CHANNEL = "celery_durable_messages"
EVENTS_CHANNEL = "celery_durable_events"
STREAMS_CHANNEL = "celery_durable_streams"

# Every channel, for the process's one LISTEN connection.
CHANNELS = (MESSAGES_CHANNEL, EVENTS_CHANNEL, STREAMS_CHANNEL)

# A producer without a broker (DBOSClient with no broker_url) committed a workflow that a
# worker must publish; payload "{id}:{generation}". Only workers listen to it.
ENQUEUED_CHANNEL = "celery_durable_enqueued"
