"""Keeps a Redis worker alive when Redis restarts (a workaround for a kombu bug).

The bug (kombu 5.4.2 to 5.7.0, ``kombu/transport/redis.py``; the full account and a
standalone reproduction: docs/kombu-redis-restart.md). When the broker connection
drops while a BRPOP is in flight, Celery's consumer calls ``Connection.collect()``
and then ``Connection.close()``. In ``collect()``, the consumer channel's
``Channel.close`` raises the lost BRPOP's ``ConnectionError`` (from ``_brpop_read``)
before the channel is closed; ``Transport.close_connection`` stops at the first other
channel whose close raises too (Celery's remote-control channel deletes its auto-delete
fanout queue); then ``collect()`` sets the transport's ``client`` to None and keeps the
connection's default channel. ``Connection.close()`` closes that channel again: it
restores its unacknowledged messages (``QoS.restore_unacked``), which builds a new
connection pool, and ``Channel._connparams`` reads ``self.connection.client.hostname``
of a transport whose client is None. The ``AttributeError`` is not a connection error,
so it escapes Celery's ``ignore_errors`` and the worker stops ("Unrecoverable error").
A worker holding no unacknowledged message restores nothing and survives; ours nearly
always holds some (every step's backoff, sleep and wait is an ETA message).

The workaround: a channel remembers the connection parameters it was created with, and
builds a pool after its transport was closed from those. The restore then goes to the
broker it came from: if Redis is back the messages return to the queue at once; if not,
the restore raises a connection error, which Celery ignores, and the worker reconnects
(the messages stay in Redis's ``unacked`` hash if Redis kept its data, and the recovery
sweep publishes their workflows again either way). A message acknowledged after the
reconnection on its old channel is acknowledged the same way.

Installed only for the kombu versions it was verified on (``COVERED``); the test
``tests/integration/test_broker_restart.py`` fails when the installed kombu is outside them or no
longer has the bug.
"""

from __future__ import annotations

import functools
import re
import threading
from importlib import metadata
from typing import Any

# The kombu versions whose bug this works around, first and last included: the
# reproduction in docs/kombu-redis-restart.md fails on 5.4.2, 5.5.4, 5.6.2 and 5.7.0,
# and passes with the workaround on each.
COVERED = ((5, 4, 0), (5, 7, 0))

_REMEMBERED = "_celery_durable_conninfo"
_lock = threading.Lock()


class _ClosedTransport:
    """What ``Channel._connparams`` reads of its transport: ``client`` (the
    ``kombu.Connection`` with the broker's address) and ``default_port``."""

    def __init__(self, client: Any, default_port: int) -> None:
        self.client = client
        self.default_port = default_port


def covers(version: tuple[int, int, int]) -> bool:
    """Whether the workaround applies to this kombu version (major, minor, micro)."""
    first, last = COVERED
    return first <= version <= last


def kombu_version() -> tuple[int, int, int]:
    """The installed kombu's (major, minor, micro); a pre-release counts as its release."""
    version = metadata.version("kombu")
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"Unrecognized kombu version {version!r}")
    major, minor, micro = (int(part) for part in match.groups())
    return (major, minor, micro)


def _channel_class() -> Any:
    """kombu's Redis channel class (untyped: the workaround replaces one of its methods).

    Imported on first use, by a worker whose broker is Redis: importing kombu's Redis
    transport imports redis-py, which imports whatever its instrumentation finds
    installed (OpenTelemetry, in redis-py 8), in every process that imports us.
    """
    from kombu.transport import redis as kombu_redis

    return kombu_redis.Channel


def installed() -> bool:
    """Whether the workaround is installed in this process."""
    return bool(getattr(_channel_class()._get_pool, "celery_durable_workaround", False))


def install() -> bool:
    """Installs the workaround if the installed kombu is one it covers (idempotent);
    returns whether it is installed."""
    if not covers(kombu_version()):
        return False
    channel = _channel_class()
    with _lock:
        if installed():
            return True
        original = channel._get_pool

        @functools.wraps(original)
        def _get_pool(self: Any, asynchronous: bool = False) -> Any:
            transport = self.connection
            if transport is not None and transport.client is not None:
                self.__dict__[_REMEMBERED] = (transport.client, transport.default_port)
                return original(self, asynchronous)
            remembered = self.__dict__.get(_REMEMBERED)
            if remembered is None:  # never connected: kombu's own behaviour
                return original(self, asynchronous)
            # The transport was closed under the channel (see the module's docstring):
            # build the pool from the parameters the channel was created with.
            with _lock:
                self.connection = _ClosedTransport(*remembered)
                try:
                    return original(self, asynchronous)
                finally:
                    self.connection = transport

        _get_pool.celery_durable_workaround = True  # type: ignore[attr-defined]
        channel._get_pool = _get_pool
    return True
