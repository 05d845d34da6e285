"""A worker's LISTEN for workflows that a producer without a broker committed.

``DBOSClient(system_database_url)`` with no broker writes the workflow's row and
notifies :data:`~celery_durable.store.channels.ENQUEUED_CHANNEL`; every worker listens
and one of them publishes the message (``OperationStore.take_for_publishing``). A
notification lost while the connection is down leaves the workflow to the recovery
sweep, which publishes it once its delivery is overdue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from celery_durable.store.channels import ENQUEUED_CHANNEL

logger = logging.getLogger("celery_durable.listener")

_POLL_SECONDS = 1.0
# Reconnecting backs off from the first to the last (the sweep covers the gap).
_RECONNECT_SECONDS = (1.0, 30.0)


def listen_for_enqueued(
    url: str, on_enqueued: Callable[[str, int], None], stopped: threading.Event
) -> None:
    """Calls ``on_enqueued(workflow_id, generation)`` for each notification until
    ``stopped`` is set (reconnecting after a lost connection, at growing intervals, with
    one warning per outage)."""
    delay = _RECONNECT_SECONDS[0]
    while not stopped.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"LISTEN {ENQUEUED_CHANNEL}")
                delay = _RECONNECT_SECONDS[0]
                while not stopped.is_set():
                    for notify in connection.notifies(timeout=_POLL_SECONDS):
                        workflow_id, _, generation = notify.payload.rpartition(":")
                        if workflow_id and generation.isdigit():
                            on_enqueued(workflow_id, int(generation))
        except psycopg.Error as error:
            if delay == _RECONNECT_SECONDS[0] and not stopped.is_set():
                logger.warning(
                    "Enqueue listener lost its connection (%s); retrying (the recovery "
                    "sweep publishes what it misses)",
                    str(error).strip().splitlines()[0] if str(error).strip() else error,
                )
            stopped.wait(delay)
            delay = min(delay * 2, _RECONNECT_SECONDS[1])
