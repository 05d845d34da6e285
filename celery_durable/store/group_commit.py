"""Group commit: the checkpoints of a process's executions that wait at the same moment
share one statement.

A checkpoint that finds a connection of the statement pool free goes at once, alone,
with the one-row statement (a lone step never waits for company). One that finds every
connection busy joins the queue; when a connection comes free, the execution that holds
it takes everything queued (its own checkpoint first among them, or after the older
ones) and sends it as one multi-row statement: one round trip, one transaction, one
WAL flush for the lot. Each checkpoint's execution moves on only once that statement
has committed, and each reads its own outcome from the statement's rows (its
workflow's status, and whether its row was written: the owner-token condition is per
row, exactly as alone).

The execution that sends a batch hands the connection to the oldest checkpoint still
queued once its own is done, so nobody sends others' checkpoints for long. A batch
that fails for any reason but a lost connection is sent again one checkpoint at a
time, so that one bad checkpoint fails alone.

A batch whose connection was lost under it (a PostgreSQL restart during the statement)
is sent once more, on a new connection: whether it committed is unknown, and sending a
checkpoint twice is safe. Its statement is an upsert conditional on the claim's
owner token that changes nothing in a completed row, so the second sending, whether the
first committed or not, leaves the same row: written now (the first did not commit, or
left a retry's incomplete row, which it rewrites with the same values), or found
complete ("already recorded": the execution goes on, as it would have), or refused
because another execution owns the workflow now (the fence is lost either way). The
step itself never runs again for it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store.fence import StatementListener
from celery_durable.store.statements import StatementPool

# (the workflow's status or None: another execution owns it; whether the row was written)
Outcome = tuple[str | None, bool]


class _Checkpoint:
    """One execution's checkpoint, queued: its parameters and, once sent, its outcome."""

    __slots__ = ("action", "error", "leads", "outcome", "params", "ready", "resent")

    def __init__(self, params: dict[str, Any], action: Callable[[], str]) -> None:
        self.params = params
        self.action = action
        self.ready = threading.Event()
        self.outcome: Outcome | None = None
        self.error: DBOSSystemDatabaseError | None = None
        self.leads = False  # handed a connection: this execution sends the next batch
        self.resent = False  # queued again after its connection was lost under it

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


class GroupCommit:
    """Sends checkpoints through ``pool``, several to a statement when they queue.

    Args:
        pool: The statement pool; at most its size batches are in flight at once.
        one: The one-row statement (its parameters: a checkpoint's).
        many: The multi-row statement: one parameter ``rows``, a JSON array of the
            checkpoints' parameters; returns (workflow_uuid, function_id, status,
            recorded) per checkpoint.
        listeners: Hear of each statement sent (the tests' statement counts).
        max_batch: The most checkpoints in one statement.
    """

    def __init__(
        self,
        pool: StatementPool,
        one: str,
        many: str,
        *,
        listeners: Sequence[StatementListener] = (),
        max_batch: int = 64,
    ) -> None:
        self._pool = pool
        self._listeners = listeners
        self._one = one
        self._many = many
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queued: list[_Checkpoint] = []
        self._sending = 0  # executions holding a connection to send batches
        self._pid = os.getpid()
        self.batches = 0  # statements sent with more than one checkpoint (for the tests)

    def record(self, params: dict[str, Any], action: Callable[[], str]) -> Outcome:
        """Sends one checkpoint (alone or with others); returns its outcome once the
        statement that carried it committed."""
        mine = _Checkpoint(params, action)
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's senders are not ours
                self._queued, self._sending, self._pid = [], 0, os.getpid()
            self._queued.append(mine)
            sends = self._sending < self._pool.size
            if sends:
                self._sending += 1
        while True:
            if sends:  # always ends by handing the connection on, or giving it back
                self._send_batches(mine)
            if mine.outcome is not None or mine.error is not None:
                return mine.result()
            mine.ready.wait()
            with self._lock:
                sends, mine.leads = mine.leads, False
                if sends:  # woken to send, not sent: wait again for the outcome later
                    mine.ready.clear()

    def _send_batches(self, mine: _Checkpoint) -> None:
        """Sends what is queued, a batch at a time, until ``mine`` is sent (or taken by
        another sender); then hands the connection over to the oldest checkpoint still
        queued, if any."""
        try:
            for connection in ("first", "last"):
                try:
                    with self._pool.cursor(mine.action) as cursor:
                        while mine.outcome is None and mine.error is None:
                            with self._lock:
                                batch = self._queued[: self._max_batch]
                                del self._queued[: self._max_batch]
                            if not batch:  # mine is in another sender's batch
                                break
                            self._send(cursor, batch)
                    return
                except DBOSSystemDatabaseError as error:  # no connection, or it was lost
                    with self._lock:
                        if mine not in self._queued:
                            return  # sent: its outcome or error is set
                        if mine.resent and connection == "first":
                            continue  # its connection was lost under it: send it again
                        self._queued.remove(mine)
                        mine.error = error
                        mine.ready.set()
                        return
        finally:
            with self._lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._sending -= 1

    def _send(self, cursor: Any, batch: list[_Checkpoint]) -> None:
        """Sends ``batch`` in one statement; every checkpoint of it ends with its
        outcome or an error, and is woken, whatever happens here."""
        try:
            if len(batch) == 1:
                for listener in self._listeners:
                    listener(self._one)
                status, recorded = cursor.execute(self._one, batch[0].params).fetchone()
                batch[0].outcome = (status, bool(recorded))
            else:
                self._send_many(cursor, batch)
        except psycopg.Error as error:
            if len(batch) > 1 and not cursor.connection.broken:
                for checkpoint in batch:  # one bad checkpoint fails alone
                    self._send(cursor, [checkpoint])
                return
            if cursor.connection.broken:
                # Lost under the statement: each checkpoint sent only once goes back to
                # the head of the queue, to be sent again on a new connection (safe:
                # see the module's docstring).
                again = [checkpoint for checkpoint in batch if not checkpoint.resent]
                for checkpoint in again:
                    checkpoint.resent = True
                with self._lock:
                    self._queued[:0] = again
                batch = [checkpoint for checkpoint in batch if checkpoint not in again]
            for checkpoint in batch:
                checkpoint.error = DBOSSystemDatabaseError(
                    f"System database error while {checkpoint.action()}: {error}"
                )
                checkpoint.error.__cause__ = error
            if cursor.connection.broken:
                raise  # the pool drops the connection
        finally:
            for checkpoint in batch:
                if checkpoint.outcome is None and checkpoint.error is None:
                    checkpoint.error = DBOSSystemDatabaseError(
                        f"Interrupted while {checkpoint.action()}: its statement's outcome is "
                        "unknown"
                    )
                checkpoint.ready.set()

    def _send_many(self, cursor: Any, batch: list[_Checkpoint]) -> None:
        rows = json.dumps([checkpoint.params for checkpoint in batch])
        for listener in self._listeners:
            listener(self._many)
        outcomes = {
            (workflow_uuid, function_id): (status, bool(recorded))
            for workflow_uuid, function_id, status, recorded in cursor.execute(
                self._many, {"rows": rows}
            ).fetchall()
        }
        self.batches += 1
        for checkpoint in batch:
            key = (checkpoint.params["workflow_uuid"], checkpoint.params["function_id"])
            checkpoint.outcome = outcomes[key]
