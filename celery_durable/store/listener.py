"""Waiting for PostgreSQL notifications: one LISTEN connection per process.

Waiters outside any workflow (``get_event``, ``read_stream``, a direct call's ``recv``)
subscribe to a ``(channel, payload)`` before they look at the database, then sleep until
a writer's ``pg_notify`` (sent at its commit) or their timeout. A lost notification
costs latency only: every waiter looks again at least every ``fallback_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import psycopg

from celery_durable.store.channels import CHANNELS

logger = logging.getLogger("celery_durable.listener")

# How long a waiter sleeps at most before it looks at the database again anyway.
FALLBACK_SECONDS = 2.0
# How long the listening thread blocks on the connection before checking for stop.
_POLL_SECONDS = 1.0
_RECONNECT_SECONDS = 1.0


class _Waiter(Protocol):
    def set(self) -> None: ...


class _LoopWaiter:
    """Wakes an ``asyncio.Event`` of an event loop from the listening thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop = loop
        self._event = event

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            self._loop.call_soon_threadsafe(self._event.set)


class NotificationListener:
    """A daemon thread LISTENing on celery_durable's channels for this process.

    Args:
        url: The system database (a ``postgresql://`` URL, as ``urls.normalize`` returns).
        listen: False (``use_listen_notify: False``): no LISTEN connection; every waiter
            looks at the database every ``FALLBACK_SECONDS``.
    """

    def __init__(self, url: str, *, listen: bool = True) -> None:
        self._conninfo = url
        self.listen = listen
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], list[_Waiter]] = {}
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextlib.contextmanager
    def subscribe(self, channel: str, payload: str) -> Iterator[threading.Event]:
        """An event set when ``payload`` is notified on ``channel`` (subscribe first, then
        check the database, then wait on it)."""
        self._ensure_started()
        event = threading.Event()
        with self._registered((channel, payload), event):
            yield event

    @contextlib.asynccontextmanager
    async def subscribe_async(self, channel: str, payload: str) -> AsyncIterator[asyncio.Event]:
        """``subscribe`` for a coroutine: an ``asyncio.Event`` of the running loop, so
        that a wait holds no thread (the listener's thread wakes the loop)."""
        await asyncio.to_thread(self._ensure_started)
        event = asyncio.Event()
        with self._registered((channel, payload), _LoopWaiter(asyncio.get_running_loop(), event)):
            yield event

    @contextlib.contextmanager
    def _registered(self, key: tuple[str, str], waiter: _Waiter) -> Iterator[None]:
        with self._lock:
            self._waiters.setdefault(key, []).append(waiter)
        try:
            yield
        finally:
            with self._lock:
                waiters = self._waiters.get(key, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    self._waiters.pop(key, None)

    def stop(self) -> None:
        self._stopped.set()

    def _ensure_started(self) -> None:
        if not self.listen:
            return
        pid = os.getpid()
        if self._thread is not None and self._pid == pid and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != pid or not self._thread.is_alive():
                # A forked child does not inherit the parent's thread: start its own.
                self._listening = threading.Event()
                self._stopped = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, name="celery-durable-listener", daemon=True
                )
                self._pid = pid
                self._thread.start()
        # Notifications sent before LISTEN took effect are only caught by the fallback.
        self._listening.wait(timeout=FALLBACK_SECONDS)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    for channel in CHANNELS:
                        connection.execute(f"LISTEN {channel}")
                    self._listening.set()
                    while not self._stopped.is_set():
                        for notify in connection.notifies(timeout=_POLL_SECONDS):
                            self._dispatch(notify.channel, notify.payload)
            except psycopg.Error as error:
                self._listening.clear()
                logger.warning("Notification listener lost its connection (%s); retrying", error)
                self._wake_everyone()  # waiters look at the database themselves
                self._stopped.wait(_RECONNECT_SECONDS)

    def _dispatch(self, channel: str, payload: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get((channel, payload), ()))
        for event in waiters:
            event.set()

    def _wake_everyone(self) -> None:
        with self._lock:
            waiters = [event for events in self._waiters.values() for event in events]
        for event in waiters:
            event.set()
