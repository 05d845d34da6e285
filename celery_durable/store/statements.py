"""The connections that executions borrow for one statement each (step checkpoints).

A small pool of its own rather than SQLAlchemy's: a checkout here is taking a
connection and its cursor off a list (a microsecond or two, against about thirty for a
SQLAlchemy checkout, a tenth of a checkpoint's round trip on a fast server). Bounded:
when every connection is busy, the borrower waits for one (statements are short).
Per process: a forked child starts with none of its parent's.

After a PostgreSQL restart every idle connection is dead. None is lent so: a connection
is checked before it is lent (:func:`~celery_durable.store.liveness.lost`, one
non-blocking read, no round trip), and one that fails with a lost connection retires
every connection opened before it (its generation: they went with the same server), so
a restart costs no statement.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import pq

from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store.fence import cancel_in_flight
from celery_durable.store.liveness import lost

# A lent connection: (connection, its cursor, its serial number: the order it was opened).
_Lent = tuple[psycopg.Connection[Any], Any, int]


class StatementPool:
    """Up to ``size`` autocommit connections, each with its cursor, lent one statement
    at a time.

    Args:
        connect: Opens a new autocommit psycopg connection.
        size: The most connections open at once.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], size: int) -> None:
        self._connect = connect
        self._size = max(1, size)
        self._available = threading.Condition()
        self._idle: list[_Lent] = []
        self._open = 0
        self._opened = 0  # serial numbers handed out
        self._retired_below = 0  # connections of a lower serial are not lent again
        self._pid = os.getpid()

    @property
    def size(self) -> int:
        """The most connections open at once."""
        return self._size

    @contextlib.contextmanager
    def cursor(self, action: Callable[[], str]) -> Iterator[Any]:
        """Lends a connection's cursor for one statement; a driver error becomes a
        :class:`DBOSSystemDatabaseError` naming ``action`` (a lost connection is closed
        and not lent again, as is one whose statement an exception interrupted)."""
        connection, cursor, serial = self._take(action)
        lent: psycopg.Connection[Any] | None = connection
        try:
            yield cursor
        except psycopg.Error as error:
            if connection.broken:
                self._retire(serial)
                self._drop(connection)
                lent = None
            raise DBOSSystemDatabaseError(f"System database error while {action()}: {error}") from (
                error
            )
        except BaseException:
            # Interrupted (a time limit, gevent's Timeout, a kill) with a statement
            # perhaps still in flight: the connection's state is unknown, so it goes.
            if connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                cancel_in_flight(connection)
                self._drop(connection)
                lent = None
            raise
        finally:
            if lent is not None:
                self._give_back((lent, cursor, serial))

    def close(self) -> None:
        with self._available:
            if self._pid == os.getpid():
                for connection, _, _ in self._idle:
                    connection.close()
            self._idle, self._open = [], 0

    def _take(self, action: Callable[[], str]) -> _Lent:
        while True:
            with self._available:
                if self._pid != os.getpid():  # forked: the parent's connections are not ours
                    self._idle, self._open, self._pid = [], 0, os.getpid()
                while not self._idle and self._open >= self._size:
                    self._available.wait()
                if not self._idle:
                    self._open += 1
                    serial = self._opened
                    self._opened += 1
                    break
                lent = self._idle.pop()
            connection, _, serial = lent
            if serial >= self._retired_below and not lost(connection):
                return lent
            # Dead (its server restarted, or its backend was terminated): so are its
            # elders, most likely. None of them is lent; a new connection is opened.
            self._retire(serial)
            self._drop(connection)
        try:
            connection = self._connect()
        except psycopg.Error as error:
            self._drop(None)
            raise DBOSSystemDatabaseError(
                f"System database error while {action()}: {error}"
            ) from error
        return connection, connection.cursor(), serial

    def _retire(self, serial: int) -> None:
        """Retires every connection opened up to ``serial`` (one of them was found
        lost): the idle ones are closed now, the lent ones when given back."""
        with self._available:
            self._retired_below = max(self._retired_below, serial + 1)
            retired = [lent for lent in self._idle if lent[2] < self._retired_below]
            self._idle = [lent for lent in self._idle if lent[2] >= self._retired_below]
        for connection, _, _ in retired:
            self._drop(connection)

    def _give_back(self, lent: _Lent) -> None:
        if lent[2] < self._retired_below:
            self._drop(lent[0])
            return
        with self._available:
            if self._pid == os.getpid():
                self._idle.append(lent)
                self._available.notify()

    def _drop(self, connection: psycopg.Connection[Any] | None) -> None:
        if connection is not None:
            connection.close()
        with self._available:
            self._open -= 1
            self._available.notify()
