"""Keeps a threads worker consuming after a broker reconnection (a workaround for a
Celery bug).

The bug (Celery 5.4.0 to 5.7.0, ``celery/worker/consumer/consumer.py``; the full account
and a standalone reproduction: docs/celery-threads-reconnect.md). After a broker
connection is lost while tasks run, the consumer lowers its prefetch count and restores
it one step per task finished on the new connection:
``Consumer._restore_prefetch_count_after_connection_restart`` sends ``basic.qos`` and
waits for ``qos-ok`` on the consumer's connection. It runs as a callback of the task's
acknowledgement (``ack_log_error_promise.then(...)`` and its ``on_error``), in the thread
that acknowledges: with ``--pool threads``, a pool thread. py-amqp's connection is not
thread-safe; the pool thread's blocking read for ``qos-ok`` races the event loop's reads
of the same socket (and other pool threads' restores): a reader takes another's frame or
half a frame, and the frame stream is lost for all of them. The event loop then spins in
a non-blocking read that never completes (it never comes back to the loop, so a SIGTERM's
warm shutdown never starts) and the pool threads block for ever in theirs: the worker is
alive, consumes nothing, and ignores SIGTERM. On RabbitMQ, where a reconnection with
tasks in flight lowers the prefetch count (global QoS, before RabbitMQ 4); the acks
themselves already go through the event loop (``call_soon_ack``).

The workaround: the consumer's restore runs on the consumer's event loop. Called from
another thread, it is handed to the loop (``hub.call_soon``, which wakes it) and runs
there at its next turn, where every other ``basic.qos`` of the worker is sent. A restore
a turn later changes nothing but when the prefetch count grows back.

Installed on each worker's consumer (``integration/lifecycle._DurableStep``) only for
the Celery versions it was verified on (``COVERED``); ``tests/integration/test_broker_restart.py``
fails when the installed Celery is outside them or no longer has the bug.
"""

from __future__ import annotations

import functools
import re
import threading
from importlib import metadata
from typing import Any

# The Celery versions whose bug this works around, first and last included: the
# reproduction (docs/celery_threads_reconnect_repro.py) hangs on 5.4.0, 5.6.3 and 5.7.0
# (kombu 5.7.0) and passes with the workaround on each; 5.5.3 has the same code (read).
COVERED = ((5, 4, 0), (5, 7, 0))

_RESTORE = "_restore_prefetch_count_after_connection_restart"


def covers(version: tuple[int, int, int]) -> bool:
    """Whether the workaround applies to this Celery version (major, minor, micro)."""
    first, last = COVERED
    return first <= version <= last


def celery_version() -> tuple[int, int, int]:
    """The installed Celery's (major, minor, micro); a pre-release counts as its release."""
    version = metadata.version("celery")
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"Unrecognized Celery version {version!r}")
    major, minor, micro = (int(part) for part in match.groups())
    return (major, minor, micro)


def installed(consumer: Any) -> bool:
    """Whether the workaround is installed on this consumer."""
    return bool(getattr(getattr(consumer, _RESTORE, None), "celery_durable_workaround", False))


def install(consumer: Any) -> bool:
    """Makes ``consumer`` (a worker's ``celery.worker.consumer.Consumer``, not started
    yet) restore its prefetch count on its event loop, if the installed Celery is one the
    workaround covers; returns whether it is installed.

    Called in the thread that then starts the worker, which runs the consumer's loop.
    """
    if not covers(celery_version()) or not hasattr(consumer, _RESTORE):
        return False
    if installed(consumer):
        return True
    restore = getattr(consumer, _RESTORE)
    loop_thread = threading.get_ident()

    @functools.wraps(restore)
    def restore_on_the_loop(*args: Any) -> Any:
        hub = consumer.hub
        if hub is None or threading.get_ident() == loop_thread:
            # No event loop (gevent, eventlet: one thread), or already on it.
            return restore(*args)
        hub.call_soon(restore, *args)
        return None

    restore_on_the_loop.celery_durable_workaround = True  # type: ignore[attr-defined]
    # The task handler looks the method up on the consumer for every message it receives.
    setattr(consumer, _RESTORE, restore_on_the_loop)
    return True
