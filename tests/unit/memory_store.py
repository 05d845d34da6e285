"""An in-memory implementation of the engine's store protocol (``engine/ports.py``).

It lets the engine's unit tests run its rules — replay, operation numbering, retries,
reschedules, children, sleeps, messages — in milliseconds and with no service at all.
Each method does in Python what its PostgreSQL statement does (see ``store/sql`` and
``store/sql/schema.sql``), for the columns the engine's outcome depends on. Left out,
because the store and not the engine decides them: queues' admission (``throttled``),
application versions (``version``), deadlines, and the sweeps.
``tests/integration/test_store_contract.py`` runs the same scenarios against both stores.

It lives with the tests, not in the library: it is a yardstick for the engine, not a
backend, and shipping it would invite running workflows without durability.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.store.bulk_sending import BulkSent, Outgoing
from celery_durable.store.channels import MESSAGES_CHANNEL
from celery_durable.store.rows import (
    Claim,
    ClaimOutcome,
    Dispatch,
    NewWorkflow,
    ReportedOutcome,
    Sent,
)
from celery_durable.store.workflow_store import conflict
from tests.unit.memory_execution import MemoryExecution
from tests.unit.memory_tables import RUNNABLE, Tables, WorkflowRow


class MemoryNotifications:
    """``NotificationListener`` without PostgreSQL: writers notify, waiters wake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], list[threading.Event | _LoopWaker]] = defaultdict(list)

    @contextlib.contextmanager
    def subscribe(self, channel: str, payload: str) -> Iterator[threading.Event]:
        event = threading.Event()
        with self._lock:
            self._waiters[(channel, payload)].append(event)
        try:
            yield event
        finally:
            with self._lock:
                self._waiters[(channel, payload)].remove(event)

    @contextlib.asynccontextmanager
    async def subscribe_async(self, channel: str, payload: str) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        waker = _LoopWaker(loop, event)
        with self._lock:
            self._waiters[(channel, payload)].append(waker)
        try:
            yield event
        finally:
            with self._lock:
                self._waiters[(channel, payload)].remove(waker)

    def notify(self, channel: str, payload: str) -> None:
        with self._lock:
            waiters = list(self._waiters[(channel, payload)])
        for event in waiters:
            event.set()


class _LoopWaker:
    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self._event = loop, event

    def set(self) -> None:
        self._loop.call_soon_threadsafe(self._event.set)


class MemoryExecutions:
    """``claim_workflow`` / ``call_workflow`` and ``WAKE_PARENT``."""

    def __init__(self, tables: Tables, notifications: MemoryNotifications) -> None:
        self._tables = tables
        self._notifications = notifications
        self._tokens = itertools.count(1)

    @contextlib.contextmanager
    def claim(
        self,
        workflow_uuid: str,
        executor_id: str,
        *,
        generation: int | None = None,
        max_recovery_attempts: int | None = None,
        new: NewWorkflow | None = None,
        app_version: str | None = None,
        version_live_ms: int = 0,
        reported: ReportedOutcome | None = None,
    ) -> Iterator[MemoryExecution]:
        token = next(self._tokens)
        with self._tables.transaction() as tables:
            woken: Dispatch | None = None
            if reported is not None:  # what claim_after_task does first
                recorded, woken = _record(tables, workflow_uuid, reported)
                generation = None if woken is None else woken.generation
            if reported is not None and woken is None:
                claim = _claim("recorded" if recorded else "unrecorded", None)
            elif workflow_uuid in tables.fences:
                claim = _claim("busy", None)
            else:
                claim = self._claim(
                    tables, workflow_uuid, generation, max_recovery_attempts, new, token
                )
            claim = dataclasses.replace(claim, woken=woken)
            if claim.outcome == "claimed":
                tables.fences.add(workflow_uuid)
        execution = MemoryExecution(
            self._tables, self._notifications.notify, workflow_uuid, claim, token
        )
        try:
            yield execution
        finally:
            execution.release()

    def _claim(
        self,
        tables: Tables,
        workflow_uuid: str,
        generation: int | None,
        max_recovery_attempts: int | None,
        new: NewWorkflow | None,
        token: int,
    ) -> Claim:
        now = now_epoch_ms()
        if new is not None and not tables.insert(new, now):
            existing = tables.workflows[workflow_uuid]
            if existing.name != new.name:
                raise conflict(workflow_uuid, existing.name, new.name)
        row = tables.workflows.get(workflow_uuid)
        if row is None:
            return _claim("missing", None)
        fresh = generation is None or row.dispatch_generation <= generation
        if row.status not in RUNNABLE or not fresh:
            if row.status in RUNNABLE:
                return _claim("stale", row)
            # A direct call that finds its workflow finished gets the recorded outcome.
            recorded = (row.output, row.error) if new is not None else None
            return _claim("finished", row, recorded=recorded)
        row.recovery_attempts += 1 if row.execution_active else 0
        row.status, row.execution_active, row.dispatch_parked = "PENDING", True, False
        row.dispatch_generation = max(row.dispatch_generation, generation or 0)
        if max_recovery_attempts is not None:
            row.max_recovery_attempts = max_recovery_attempts
        row.owner_token = token
        if row.recovery_attempts > row.max_recovery_attempts:
            row.status, row.execution_active = "MAX_RECOVERY_ATTEMPTS_EXCEEDED", False
            return _claim("exceeded", row)
        checkpoints = dict(sorted(tables.steps[workflow_uuid].items()))
        return _claim("claimed", row, checkpoints=checkpoints)

    def wake_parent(self, parent_uuid: str) -> Dispatch | None:
        with self._tables.transaction() as tables:
            row = tables.workflows.get(parent_uuid)
            if row is None or row.status != "PENDING":
                return None
            row.wake_requested = row.execution_active
            if not row.execution_active:
                row.dispatch_generation += 1
            row.next_dispatch_at_epoch_ms = now_epoch_ms()
            row.dispatch_parked = False
            return None if row.execution_active else row.dispatch()


def _record(
    tables: Tables, workflow_uuid: str, reported: ReportedOutcome
) -> tuple[bool, Dispatch | None]:
    """``claim_after_task``'s record and wake-up: whether it recorded, and the dispatch
    if it woke a workflow no execution runs."""
    steps = tables.steps.get(workflow_uuid, {})
    step = steps.get(reported.function_id)
    if (
        step is None
        or step.child_workflow_id != reported.task_id
        or step.completed_at_epoch_ms is not None
        or step.error is not None
    ):
        return False, None
    now = now_epoch_ms()
    steps[reported.function_id] = dataclasses.replace(
        step,
        output=reported.output,
        error=reported.error,
        completed_at_epoch_ms=None if reported.error else now,
        retry_due_at_epoch_ms=step.retry_due_at_epoch_ms if reported.error else None,
    )
    row = tables.workflows[workflow_uuid]
    if row.status != "PENDING":
        return True, None
    if row.execution_active:
        row.wake_requested = True
        return True, None
    row.dispatch_generation += 1
    row.next_dispatch_at_epoch_ms, row.dispatch_parked = now, False
    woken = Dispatch(name=row.name, queue_name=row.queue_name, generation=row.dispatch_generation)
    return True, woken


def _claim(
    outcome: ClaimOutcome,
    row: WorkflowRow | None,
    *,
    checkpoints: dict[int, StepRecord] | None = None,
    recorded: tuple[str | None, str | None] | None = None,
) -> Claim:
    claimed = outcome == "claimed"
    return Claim(
        outcome=outcome,
        name=None if row is None else row.name,
        status=None if row is None else row.status,
        inputs=row.inputs if claimed and row is not None else None,
        authenticated_user=row.authenticated_user if claimed and row is not None else None,
        checkpoints=checkpoints or {},
        parent_workflow_id=row.parent_workflow_id if claimed and row is not None else None,
        recorded=recorded,
    )


class MemoryWorkflows:
    """Inserting workflows, and reading their outcomes, identities and checkpoints."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def insert_workflow(self, workflow: NewWorkflow) -> bool:
        """Whether the row is new (the PostgreSQL store returns the row found)."""
        with self._tables.transaction() as tables:
            return tables.insert(workflow, now_epoch_ms())

    def get_outcome(self, workflow_uuid: str) -> tuple[str, str, str | None, str | None] | None:
        row = self._tables.workflows.get(workflow_uuid)
        return None if row is None else (row.name, row.status, row.output, row.error)

    def get_identity(self, workflow_uuid: str) -> tuple[str | None, str | None]:
        row = self._tables.workflows.get(workflow_uuid)
        return (None, None) if row is None else (row.authenticated_roles, row.assumed_role)

    def list_steps(self, workflow_uuid: str) -> list[StepRecord]:
        with self._tables.transaction() as tables:
            return [step for _, step in sorted(tables.steps[workflow_uuid].items())]


class MemoryMessages:
    """Messages, events and streams outside any workflow."""

    def __init__(self, tables: Tables, notifications: MemoryNotifications) -> None:
        self._tables = tables
        self._notifications = notifications

    def send_message(self, destination: str, topic: str, message_uuid: str, message: str) -> Sent:
        with self._tables.transaction() as tables:
            sent = tables.send(destination, topic, message_uuid, message, now_epoch_ms())
        if sent.outcome == "sent":
            self._notifications.notify(MESSAGES_CHANNEL, f"{destination}::{topic}")
        return sent

    def send_bulk(self, messages: Sequence[Outgoing], to_forks: bool) -> BulkSent:
        raise NotImplementedError("send_bulk runs against PostgreSQL: tests/integration")

    def get_event(self, workflow_uuid: str, key: str) -> str | None:
        return self._tables.events.get((workflow_uuid, key))

    def get_all_events(self, workflow_uuid: str) -> dict[str, str]:
        events = self._tables.events.items()
        return {key: value for (uuid, key), value in sorted(events) if uuid == workflow_uuid}

    def read_stream(
        self, workflow_uuid: str, key: str, offset: int
    ) -> tuple[str, str | None] | None:
        with self._tables.transaction() as tables:
            row = tables.workflows.get(workflow_uuid)
            if row is None:
                return None
            stream = tables.streams[(workflow_uuid, key)]
            return row.status, stream[offset] if offset < len(stream) else None


class MemoryStore:
    """The engine's store (``EngineStore``), in memory: one set of tables shared by a
    part per concern, as the PostgreSQL store's parts share its connections."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.notifications = MemoryNotifications()
        self.executions = MemoryExecutions(self.tables, self.notifications)
        self.workflows = MemoryWorkflows(self.tables)
        self.messages = MemoryMessages(self.tables, self.notifications)
