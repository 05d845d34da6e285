"""Running ``@DBOS.transaction`` functions exactly once.

Inside a workflow, a transaction's outcome is written to the application database's
``transaction_outputs`` in the same database transaction as the user's writes: either
both commit or neither does. Before running, the transaction looks for its own record,
so one that committed just before a crash returns its recorded output instead of
running again. After the commit, the outcome is also checkpointed in the system
database like a step's, so that later replays need no extra query.

Serialization failures (SQLSTATE 40001) and deadlocks (40P01) are retried at once,
in-process, with a short capped exponential backoff: they last milliseconds, and the
retry re-runs only database work. Every other error is recorded and raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, exc
from sqlalchemy.orm import Session

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.hooks import Hook
from celery_durable.core.records import StepRecord
from celery_durable.core.retry import DATABASE_RETRY_SECONDS
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import checkpoints
from celery_durable.engine.context import WorkflowContext, current_step, current_workflow
from celery_durable.error import DBOSException
from celery_durable.store.application import ApplicationStore, TransactionOutput, is_retryable

# Sent after a workflow's transaction commits, before its system checkpoint is written
# (arguments: workflow_id, function_id, name). Tests use it to kill a worker there.
transaction_committed = Hook("transaction_committed")

MAX_SERIALIZATION_RETRIES = 30
_FIRST_BACKOFF_SECONDS = 0.002
_MAX_BACKOFF_SECONDS = 0.25


class DBOSSqlSession(Session):
    """``DBOS.sql_session``: the running transaction's SQLAlchemy ``Session``.

    Use it as an attribute (``DBOS.sql_session.execute(...)``, ``.add(...)``) or in the
    specification's form, ``with DBOS.sql_session() as session:``. The transaction is
    committed by ``@DBOS.transaction`` when the function returns; raise to roll back.
    """

    def __call__(self) -> contextlib.nullcontext[DBOSSqlSession]:
        return contextlib.nullcontext(self)

    def commit(self) -> NoReturn:
        raise DBOSException(
            "Do not call commit() on DBOS.sql_session: @DBOS.transaction commits when the "
            "function returns (together with its recorded outcome)"
        )

    def rollback(self) -> NoReturn:
        raise DBOSException(
            "Do not call rollback() on DBOS.sql_session: raise an exception to roll the "
            "transaction back"
        )


current_session: ContextVar[DBOSSqlSession | None] = ContextVar(
    "celery_durable_sql_session", default=None
)


@dataclass(frozen=True, kw_only=True)
class TransactionSpec:
    name: str
    isolation_level: str
    store: Callable[[], ApplicationStore]


@dataclass(kw_only=True)
class _Call:
    """One transaction call: where its outcome is recorded, if in a workflow."""

    spec: TransactionSpec
    workflow: WorkflowContext | None
    function_id: int | None
    started_at_epoch_ms: int
    attempts: int = 0
    # The loop's state (see attempt()):
    finished: bool = False
    retry_delay: float = 0.0
    value: Any = None
    output: str | None = None
    prior: TransactionOutput | None = None

    @contextlib.contextmanager
    def attempt(self) -> Iterator[bool]:
        """One database transaction; yields whether the function must run in it.

        It does not when its outcome was recorded by an earlier run that committed
        (then ``prior`` holds it). The function's value goes in ``value``, and is
        recorded in the same transaction. A serialization failure or deadlock sets
        ``retry_delay``; any other error is recorded and raised.
        """
        self.attempts += 1
        self.retry_delay = 0.0
        try:
            with self.spec.store().transaction(self.spec.isolation_level) as connection:
                self.prior = self.recorded(connection)
                if self.prior is not None:
                    yield False
                else:
                    with _session(connection):
                        yield True
                    self.output = self.record(connection, value=self.value)
        except Exception as error:
            self.retry_delay = _retry_delay_or_raise(self, error)
            return
        self.finished = True

    def recorded(self, connection: Connection) -> TransactionOutput | None:
        if self.workflow is None or self.function_id is None:
            return None
        prior = ApplicationStore.recorded_output(
            connection, self.workflow.workflow_id, self.function_id
        )
        if prior is not None:
            checkpoints.expect_name(
                self.workflow, self.function_id, self.spec.name, prior.function_name
            )
        return prior

    def record(
        self, connection: Connection, *, value: Any = None, error: Exception | None = None
    ) -> str | None:
        """Writes the outcome into the user's transaction; returns the serialized text."""
        if self.workflow is None or self.function_id is None:
            return None
        serializer = self.workflow.serializer
        text = serializer.dumps(value if error is None else error)
        ApplicationStore.record_output(
            connection,
            workflow_uuid=self.workflow.workflow_id,
            function_id=self.function_id,
            function_name=self.spec.name,
            output=text if error is None else None,
            error=text if error is not None else None,
        )
        return text

    def checkpoint(self, *, output: str | None, error: str | None) -> None:
        """After the commit: the outcome becomes a checkpoint in the system database."""
        if self.workflow is None or self.function_id is None:
            return
        transaction_committed.send(
            name=self.spec.name,
            workflow_id=self.workflow.workflow_id,
            function_id=self.function_id,
        )
        checkpoints.record(
            self.workflow,
            StepRecord(
                function_id=self.function_id,
                function_name=self.spec.name,
                output=output,
                error=error,
                attempts=max(self.attempts, 1),
                attempt_log=None,
                retry_due_at_epoch_ms=None,
                started_at_epoch_ms=self.started_at_epoch_ms,
                completed_at_epoch_ms=now_epoch_ms(),
            ),
        )

    def finish(self) -> Any:
        """After the database transaction committed: the value, checkpointed (or the
        outcome an earlier run recorded, when nothing ran this time)."""
        if self.prior is not None:
            return self.replay(self.prior)
        self.checkpoint(output=self.output, error=None)
        return self.value

    def replay(self, prior: TransactionOutput) -> Any:
        """A transaction that committed before: its recorded outcome, not a new run."""
        assert self.workflow is not None and self.function_id is not None
        self.checkpoint(output=prior.output, error=prior.error)
        if prior.error is not None:
            raise checkpoints.load(self.workflow, self.function_id, self.spec.name, prior.error)
        if prior.output is None:
            return None
        return checkpoints.load(self.workflow, self.function_id, self.spec.name, prior.output)

    def backoff(self, error: exc.DBAPIError) -> float | None:
        """Seconds to wait before retrying after ``error``, or None: do not retry."""
        if not is_retryable(error) or self.attempts > MAX_SERIALIZATION_RETRIES:
            return None
        delay = min(_FIRST_BACKOFF_SECONDS * 2 ** (self.attempts - 1), _MAX_BACKOFF_SECONDS)
        return float(delay * random.uniform(0.5, 1.0))  # jitter spreads the contenders

    def unavailable(self, error: exc.DBAPIError) -> RescheduleWorkflow | None:
        """A lost connection is the database's failure, not the function's."""
        if not error.connection_invalidated:
            return None
        return RescheduleWorkflow(
            DATABASE_RETRY_SECONDS, f"application database unavailable: {error.orig}"
        )


def _begin_call(spec: TransactionSpec) -> tuple[_Call, tuple[Any] | None]:
    """Takes the call's function id; returns a replayed outcome if it has one.

    Returns:
        ``(call, replayed)`` where ``replayed`` holds the recorded output, or is None
        when the transaction must run. Inside a step the transaction is part of the
        step: it runs unrecorded.
    """
    workflow = None if current_step.get() is not None else current_workflow.get()
    function_id = workflow.next_function_id() if workflow is not None else None
    call = _Call(
        spec=spec,
        workflow=workflow,
        function_id=function_id,
        started_at_epoch_ms=now_epoch_ms(),
    )
    if workflow is not None and function_id is not None:
        checkpoint = workflow.checkpoints.get(function_id)
        if checkpoint is not None:
            checkpoints.expect_name(workflow, function_id, spec.name, checkpoint.function_name)
            return call, (checkpoints.replay(workflow, checkpoint),)
    return call, None


@contextlib.contextmanager
def _session(connection: Connection) -> Iterator[DBOSSqlSession]:
    session = DBOSSqlSession(bind=connection)
    token = current_session.set(session)
    try:
        yield session
        session.flush()
    finally:
        current_session.reset(token)
        session.close()


def run_transaction(
    spec: TransactionSpec, function: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """Calls a synchronous ``@DBOS.transaction`` function."""
    if current_session.get() is not None:
        return function(*args, **kwargs)  # joins the running transaction
    call, replayed = _begin_call(spec)
    if replayed is not None:
        return replayed[0]
    while not call.finished:
        with call.attempt() as runs:
            if runs:
                call.value = function(*args, **kwargs)
        if call.retry_delay:
            time.sleep(call.retry_delay)
    return call.finish()


async def run_transaction_async(
    spec: TransactionSpec, function: Callable[..., Awaitable[Any]], args: Any, kwargs: Any
) -> Any:
    """Calls an ``async def`` ``@DBOS.transaction`` function.

    The database calls themselves are synchronous (SQLAlchemy's ``Session``): they
    block the event loop while they run.
    """
    if current_session.get() is not None:
        return await function(*args, **kwargs)
    call, replayed = _begin_call(spec)
    if replayed is not None:
        return replayed[0]
    while not call.finished:
        with call.attempt() as runs:
            if runs:
                call.value = await function(*args, **kwargs)
        if call.retry_delay:
            await asyncio.sleep(call.retry_delay)
    return call.finish()


def _retry_delay_or_raise(call: _Call, error: Exception) -> float:
    """A serialization failure or deadlock: how long to wait before the retry.

    Any other error is recorded (inside a workflow) and raised at the call site.
    """
    if isinstance(error, exc.DBAPIError):
        delay = call.backoff(error)
        if delay is not None:
            return delay
    _raise_failure(call, error)


def _raise_failure(call: _Call, error: Exception) -> NoReturn:
    """Records the error (inside a workflow) and raises it at the call site."""
    try:
        if isinstance(error, exc.DBAPIError):
            signal = call.unavailable(error)
            if signal is not None and call.workflow is not None:
                raise signal from error
        if call.workflow is not None:
            with call.spec.store().transaction("READ COMMITTED") as connection:
                text = call.record(connection, error=error)
            call.checkpoint(output=None, error=text)
    except exc.DBAPIError as record_failure:
        signal = call.unavailable(record_failure)
        if signal is None:
            raise
        raise signal from record_failure
    raise error
