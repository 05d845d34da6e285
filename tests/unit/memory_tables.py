"""The in-memory store's tables: what PostgreSQL holds for the engine, as Python objects.

One lock stands for the database's transactions: every statement of the PostgreSQL
store is one transaction, and so is every method here that takes the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from celery_durable.core.records import StepRecord
from celery_durable.store.rows import Dispatch, NewWorkflow, Sent

RUNNABLE = ("ENQUEUED", "PENDING")


@dataclass
class WorkflowRow:
    """One row of ``workflow_status`` (the columns the engine's statements touch)."""

    workflow_uuid: str
    name: str
    status: str
    queue_name: str | None
    inputs: str
    authenticated_user: str | None
    authenticated_roles: str | None
    assumed_role: str | None
    parent_workflow_id: str | None
    max_recovery_attempts: int
    created_at_epoch_ms: int
    recovery_attempts: int = 0
    output: str | None = None
    error: str | None = None
    execution_active: bool = False
    owner_token: int | None = None
    dispatch_generation: int = 0
    next_dispatch_at_epoch_ms: int | None = None
    dispatch_parked: bool = False
    wake_requested: bool = False
    wait_key: str | None = None

    def dispatch(self) -> Dispatch:
        return Dispatch(
            name=self.name, queue_name=self.queue_name, generation=self.dispatch_generation
        )


@dataclass
class Message:
    """One row of ``notifications``."""

    message_uuid: str
    destination: str
    topic: str
    message: str
    consumed_by_function_id: int | None = None


@dataclass
class Tables:
    """Every table the engine reaches, and the fences (advisory locks) held."""

    workflows: dict[str, WorkflowRow] = field(default_factory=dict)
    steps: dict[str, dict[int, StepRecord]] = field(default_factory=lambda: defaultdict(dict))
    messages: list[Message] = field(default_factory=list)
    events: dict[tuple[str, str], str] = field(default_factory=dict)
    streams: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    fences: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tables]:
        with self.lock:
            yield self

    def insert(self, workflow: NewWorkflow, now: int) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING; whether the row is new."""
        if workflow.workflow_uuid in self.workflows:
            return False
        self.workflows[workflow.workflow_uuid] = WorkflowRow(
            workflow_uuid=workflow.workflow_uuid,
            name=workflow.name,
            status=workflow.status,
            queue_name=workflow.queue_name,
            inputs=workflow.inputs,
            authenticated_user=workflow.authenticated_user,
            authenticated_roles=workflow.authenticated_roles,
            assumed_role=workflow.assumed_role,
            parent_workflow_id=workflow.parent_workflow_id,
            max_recovery_attempts=workflow.max_recovery_attempts,
            created_at_epoch_ms=now,
            next_dispatch_at_epoch_ms=now,
        )
        return True

    def record_operation(
        self, workflow_uuid: str, function_id: int, name: str, output: str | None, now: int
    ) -> bool:
        """An operation's checkpoint, unless one exists (ON CONFLICT DO NOTHING)."""
        steps = self.steps[workflow_uuid]
        if function_id in steps:
            return False
        steps[function_id] = StepRecord(
            function_id=function_id,
            function_name=name,
            output=output,
            error=None,
            attempts=1,
            attempt_log=None,
            retry_due_at_epoch_ms=None,
            started_at_epoch_ms=now,
            completed_at_epoch_ms=now,
        )
        return True

    def upsert_step(self, workflow_uuid: str, step: StepRecord) -> bool:
        """RECORD_STEP's upsert: a step's row is rewritten until it is complete."""
        steps = self.steps[workflow_uuid]
        existing = steps.get(step.function_id)
        if existing is not None and existing.completed:
            return False
        if existing is not None:
            # The first attempt's start and the name stay (the upsert does not set them).
            step = dataclasses.replace(
                step,
                function_name=existing.function_name,
                started_at_epoch_ms=existing.started_at_epoch_ms,
            )
        steps[step.function_id] = step
        return True

    def wake_waiters(self, wait_key: str, now: int, *, destination: str | None) -> list[str]:
        """The PENDING, not executing workflows that wait on ``wait_key`` (only
        ``destination``, if given) become due at once; returns their ids."""
        woken = []
        for row in self.workflows.values():
            if destination is not None and row.workflow_uuid != destination:
                continue
            if row.status == "PENDING" and not row.execution_active and row.wait_key == wait_key:
                row.dispatch_generation += 1
                row.next_dispatch_at_epoch_ms = now
                row.dispatch_parked = False
                row.wait_key = None
                woken.append(row.workflow_uuid)
        return woken

    def send(
        self,
        destination: str,
        topic: str,
        message_uuid: str,
        message: str,
        now: int,
        *,
        sender: tuple[str, int] | None = None,
    ) -> Sent:
        """``send_message``: adds the message unless its id was sent (checkpointed in
        the sender's workflow, if any) and wakes the destination if it waits for it."""
        sender_row = None if sender is None else self.workflows.get(sender[0])
        sender_status = None if sender_row is None else sender_row.status
        if sender is not None and sender[1] in self.steps[sender[0]]:
            return Sent(outcome="replayed", wake=None, sender_status=sender_status)
        if destination not in self.workflows:
            return Sent(outcome="missing", wake=None, sender_status=None)
        duplicate = any(m.message_uuid == message_uuid for m in self.messages)
        if not duplicate:
            self.messages.append(Message(message_uuid, destination, topic, message))
        if sender is not None:
            self.record_operation(sender[0], sender[1], "DBOS.send", None, now)
        if duplicate:
            return Sent(outcome="duplicate", wake=None, sender_status=sender_status)
        woken = self.wake_waiters(f"msg:{topic}", now, destination=destination)
        wake = self.workflows[destination].dispatch() if woken else None
        return Sent(outcome="sent", wake=wake, sender_status=sender_status)
