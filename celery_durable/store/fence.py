"""The process's fence: one connection that holds the advisory locks of all its
executions.

A workflow's fence is a session-level advisory lock on its id. Every execution of a
process takes it on this one connection (in the claim's statement) and lets go of it
in the statement that records its outcome, reschedules or releases it; PostgreSQL drops
every lock of the process at once if the process (or the connection) dies, which is how
the recovery sweep learns that an owner died. So a worker uses one connection for the
fences of all its executions, whatever its concurrency; the checkpoints of its steps
borrow pooled connections for one statement each (see
:class:`~celery_durable.store.execution.WorkflowExecution`).

Statements on the connection are serialized (one at a time, a lock: gevent's
monkeypatching makes it cooperative). Session locks are re-entrant within a session,
so the fence also remembers which workflows this process holds: a second execution of
one of them in this process is ``busy`` without asking the server.

If the connection is lost, the next statement opens a new one and the **epoch**
advances: executions claimed under an older epoch have lost their locks, and their
statements on the fence are refused (:class:`FenceLost`) instead of running unfenced.
A connection whose server hung up (a PostgreSQL restart) is found lost before a
statement is sent on it (:func:`~celery_durable.store.liveness.lost`): an execution
of the old epoch learns it lost its fence without a failed statement, and a new claim
goes to a new connection at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store.liveness import lost

StatementListener = Callable[[str], None]


def cancel_in_flight(connection: psycopg.Connection[Any]) -> None:
    """Asks the server to stop the connection's running statement (so that its backend
    ends, and lets go of its locks, when the connection is closed, not when the statement
    would have finished). Best effort: the connection is about to be closed anyway."""
    with contextlib.suppress(Exception):  # nothing more to do for a connection that goes
        connection.cancel_safe(timeout=2.0)


class FenceLost(DBOSSystemDatabaseError):
    """The fence's connection was lost since this execution claimed its workflow: the
    workflow may already belong to another execution. Nothing was written."""


class Fence:
    """One process's fence connection (re-created after a fork or a loss).

    Args:
        connect: Opens a new autocommit psycopg connection.
        listeners: Hear of each statement sent (the tests' statement counts).
    """

    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], listeners: Sequence[StatementListener]
    ) -> None:
        self._connect = connect
        self._listeners = listeners
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._cursor: Any = None
        self._pid = 0
        self.epoch = 0
        self._held: set[str] = set()
        # Signalled when an execution lets go of its workflow (see hold).
        self._let_go = threading.Condition(self._lock)

    def hold(self, workflow_uuid: str, wait_seconds: float = 0.0) -> bool:
        """Reserves ``workflow_uuid`` for an execution of this process; False if one
        still holds it after ``wait_seconds`` (the claim is then ``busy``)."""
        deadline = time.monotonic() + wait_seconds
        with self._lock:
            self._reset_after_fork()
            while workflow_uuid in self._held:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._let_go.wait(remaining)
            self._held.add(workflow_uuid)
            return True

    def let_go(self, workflow_uuid: str) -> None:
        """Forgets an execution's reservation (after its fence was released)."""
        with self._lock:
            self._held.discard(workflow_uuid)
            self._let_go.notify_all()

    def send(
        self,
        action: Callable[[], str],
        sql: str,
        params: dict[str, Any],
        *,
        epoch: int | None = None,
        every_row: bool = False,
    ) -> tuple[int, Any]:
        """Runs one statement on the fence connection; returns ``(epoch, row or rows)``.

        ``epoch``: the claim's; a statement of an execution whose fence was lost since
        raises :class:`FenceLost` without being sent.
        """
        for listener in self._listeners:  # outside the lock: a listener may use the fence
            listener(sql)
        with self._lock:
            self._reset_after_fork()
            if self._connection is not None and lost(self._connection):
                self._discard()
            if epoch is not None and epoch != self.epoch:
                raise FenceLost(f"Lost the fence of the execution while {action()}")
            cursor = self._open()
            try:
                cursor.execute(sql, params)
                result = cursor.fetchall() if every_row else cursor.fetchone()
            except psycopg.Error as error:
                if self._connection is not None and self._connection.broken:
                    self._discard()
                raise DBOSSystemDatabaseError(
                    f"System database error while {action()}: {error}"
                ) from error
            except BaseException:
                # Interrupted (Celery's soft time limit, gevent's Timeout) with the
                # statement perhaps in flight: the connection's state is unknown, and
                # every later statement would fail on it. It goes, with its locks.
                connection = self._connection
                if connection is not None and (
                    connection.pgconn.transaction_status != pq.TransactionStatus.IDLE
                ):
                    cancel_in_flight(connection)
                    self._discard()
                raise
            return self.epoch, result

    def check(self, epoch: int, action: Callable[[], str]) -> None:
        """Raises :class:`FenceLost` if the fence of ``epoch`` is lost, as far as can be
        told without a round trip (see :func:`~celery_durable.store.liveness.lost`):
        before a step runs, so that an execution whose locks went with a restarted
        server does not run it beside the execution the recovery sweep then starts.
        While another statement is on the connection, only the epoch is compared
        (that statement finds a dead connection out itself)."""
        if epoch != self.epoch:
            raise FenceLost(f"Lost the fence of the execution before {action()}")
        if not self._lock.acquire(blocking=False):
            return
        try:
            connection = self._connection
            if connection is not None and self._pid == os.getpid() and lost(connection):
                self._discard()
            if epoch != self.epoch:
                raise FenceLost(f"Lost the fence of the execution before {action()}")
        finally:
            self._lock.release()

    def abandon(self, epoch: int) -> None:
        """Closes the connection of ``epoch``, letting go of every lock of this process:
        for a release that failed on a live connection (a lock must never outlive its
        execution). The other executions then find their fence lost."""
        with self._lock:
            if self._pid == os.getpid() and self.epoch == epoch:
                self._discard()

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._discard()

    def _open(self) -> Any:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except psycopg.Error as error:
                raise DBOSSystemDatabaseError(
                    f"System database error while opening the fence connection: {error}"
                ) from error
            self._cursor = self._connection.cursor()
            self._pid = os.getpid()
        return self._cursor

    def _discard(self) -> None:
        """Drops a lost connection: every lock on it is gone with it."""
        connection, self._connection, self._cursor = self._connection, None, None
        self.epoch += 1
        self._held.clear()
        self._let_go.notify_all()  # a hold waiting for one of them goes on at once
        if connection is not None:
            connection.close()

    def _reset_after_fork(self) -> None:
        # A forked child must not use (or close) its parent's connection.
        if self._connection is not None and self._pid != os.getpid():
            self._connection, self._cursor = None, None
            self._held.clear()
            self.epoch += 1


class FencedStatements:
    """The fence as one execution uses it: each statement carries the epoch of the
    execution's claim, so one sent after the fence was lost is refused
    (:class:`FenceLost`) instead of running unfenced. ``action`` describes a statement
    for an error message (built only then)."""

    def __init__(self, fence: Fence, epoch: int) -> None:
        self._fence = fence
        self._epoch = epoch

    def one(
        self, action: Callable[[], str], sql: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """Runs one statement on the fence connection; returns its first row."""
        row: tuple[Any, ...] | None = self._fence.send(action, sql, params, epoch=self._epoch)[1]
        return row

    def every(
        self, action: Callable[[], str], sql: str, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """As ``one``, returning every row."""
        rows: list[tuple[Any, ...]] = self._fence.send(
            action, sql, params, epoch=self._epoch, every_row=True
        )[1]
        return rows

    def check(self, action: Callable[[], str]) -> None:
        """Raises :class:`FenceLost` if the fence is known lost (no round trip)."""
        self._fence.check(self._epoch, action)
