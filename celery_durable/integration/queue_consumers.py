"""Workers consuming the queues registered at run time (``DBOS.register_queue``).

A queue is a Celery queue of the same name, and a Celery worker consumes the queues it
was started with (``-Q``). A queue registered after the workers started is consumed by
every worker that consumes the app's default queue (the general-purpose workers; one
started with ``-Q`` naming other queues only is dedicated to those and left alone):

- ``register_queue`` broadcasts a remote-control command, which each worker runs in
  its consumer's loop, so a running worker consumes the queue at once;
- each worker's sweep (and its start-up) consumes every registered queue it does not
  consume yet, so a worker started later, or one that missed the broadcast, catches up.

``DBOS.listen_queues(names)`` narrows both to ``names`` for the workers of its Celery
app in this process (:func:`listen_only`): the in-process worker then consumes the
default queue and those queues only.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import Any

from celery import Celery
from celery.worker.control import control_command

from celery_durable.error import DBOSException

logger = logging.getLogger("celery_durable.queues")

ADOPT_QUEUES_COMMAND = "celery_durable_adopt_queues"

# Per Celery app: the only queues its workers in this process adopt (listen_queues).
_listened: weakref.WeakKeyDictionary[Celery, frozenset[str]] = weakref.WeakKeyDictionary()


def listen_only(app: Celery, names: Iterable[str] | None) -> list[str] | None:
    """The workers of ``app`` in this process adopt only ``names`` of the queues
    registered or declared (None: every one, the default); returns them as a list.

    Raises:
        DBOSException: ``names`` is not a list of non-empty strings (as DBOS checks it).
    """
    if names is None:
        _listened.pop(app, None)
        return None
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise DBOSException(
            f"listen_queues takes a list of queue names (non-empty strings), not {names!r}"
        )
    _listened[app] = frozenset(names)
    return list(names)


def listened(app: Celery) -> frozenset[str] | None:
    """The queues ``listen_only`` left ``app``'s workers, or None (every queue)."""
    return _listened.get(app)


def consumed_queue_names(consumer: Any) -> set[str]:
    """The queues a worker's consumer consumes now."""
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is not None:
        return {queue.name for queue in task_consumer.queues}
    return set(consumer.app.amqp.queues.consume_from or {})


def adopt_queues(consumer: Any, names: Iterable[str]) -> list[str]:
    """Makes a general-purpose worker consume ``names`` (in its consumer's loop); returns
    the queues it was asked to add (none for a dedicated worker)."""
    consumed = consumed_queue_names(consumer)
    if consumer.app.conf.task_default_queue not in consumed:
        return []
    only = listened(consumer.app)
    added = [name for name in names if name not in consumed and (only is None or name in only)]
    for name in added:
        consumer.call_soon(consumer.add_task_queue, name)
    return added


def announce_queue(app: Celery, name: str) -> None:
    """Tells the running workers of ``app`` that queue ``name`` was registered (no reply
    is awaited: a worker that misses it consumes the queue at its next sweep)."""
    try:
        app.control.broadcast(ADOPT_QUEUES_COMMAND, arguments={"queues": [name]})
    except Exception as error:  # the sweeps catch up
        logger.warning("Could not announce queue %s to the workers: %s", name, error)


@control_command(name=ADOPT_QUEUES_COMMAND, args=[("queues", list)], signature="<queues>")
def _adopt_queues_command(state: Any, queues: list[str] | None = None, **_: Any) -> dict[str, Any]:
    added = adopt_queues(state.consumer, queues or [])
    return {"ok": f"consuming {', '.join(added) or 'nothing new'}"}
