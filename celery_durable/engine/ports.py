"""What the engine needs from the system database, as protocols.

The engine depends on these, not on the PostgreSQL store: the real
:class:`~celery_durable.store.SystemStore` satisfies them, and so does the in-memory
store of the engine's unit tests (``tests/unit/memory_store.py``). Each protocol is as
narrow as its users: an execution's statements, its workflow code's messages, the claim
that yields an execution, reading a workflow's outcome, and messaging outside any
workflow.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol

from celery_durable.core.records import StepRecord, Wait
from celery_durable.store.bulk_sending import BulkSent, Outgoing
from celery_durable.store.rows import (
    Claim,
    Dispatch,
    NewWorkflow,
    Received,
    ReportedOutcome,
    Rescheduled,
    Sent,
    Woken,
)

# A workflow's ``(name, status, output, error)`` (output and error serialized).
Outcome = tuple[str, str, str | None, str | None]


class ExecutionMailbox(Protocol):
    """Messages, events and streams of one execution's workflow code: each write
    commits with its checkpoint, fenced like the execution's others."""

    def send_message(
        self, destination: str, topic: str, message_uuid: str, message: str, function_id: int
    ) -> Sent: ...

    def send_bulk(
        self, messages: Sequence[Outgoing], to_forks: bool, function_id: int, function_name: str
    ) -> BulkSent: ...

    def receive(
        self, *, function_id: int, topic: str, deadline_function_id: int, deadline: str
    ) -> Received: ...

    def get_event(
        self, *, function_id: int, target: str, key: str, deadline_function_id: int, deadline: str
    ) -> Received: ...

    def set_event(self, *, function_id: int, key: str, value: str, record: bool) -> list[Woken]: ...

    def write_stream(
        self, *, key: str, value: str, function_id: int, record_name: str | None
    ) -> int | None: ...


class Execution(Protocol):
    """One claimed execution of one workflow: every write of its code goes through it,
    fenced (a write after the fence was lost is refused)."""

    workflow_uuid: str
    claim: Claim
    fenced: bool
    # After complete: a Celery canvas started the workflow and waits for its outcome.
    in_canvas: bool

    @property
    def messages(self) -> ExecutionMailbox:
        """Its workflow code's messages, events and streams."""
        ...

    def check_fence(self, action: Callable[[], str]) -> None:
        """Raises ``FenceLost`` if the fence is known lost (no round trip)."""
        ...

    def record_step(self, step: StepRecord) -> str | None:
        """Writes a checkpoint; the workflow's status then (None: already complete)."""
        ...

    def complete(self, status: str, *, output: str | None, error: str | None) -> bool:
        """Records the outcome, releasing the fence; False if no longer PENDING."""
        ...

    def reschedule(
        self,
        *,
        due_at_epoch_ms: int,
        parked: bool,
        wait: Wait | None = None,
        checkpoint: StepRecord | None = None,
    ) -> Rescheduled | None:
        """Releases the workflow until then, writing ``checkpoint`` (as the owner) in
        the same transaction; None if no longer PENDING or the checkpoint not written."""
        ...

    def release(self) -> None:
        """Releases the workflow (no outcome) if this execution still owns it."""
        ...


class Executions(Protocol):
    """Claiming workflows for executions, and waking a parent after its child ended."""

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
    ) -> AbstractContextManager[Execution]: ...

    def wake_parent(self, parent_uuid: str) -> Dispatch | None: ...


class OutcomeReader(Protocol):
    """Reading a workflow's outcome and its recorded identity."""

    def get_outcome(self, workflow_uuid: str) -> Outcome | None: ...

    def get_identity(self, workflow_uuid: str) -> tuple[str | None, str | None]: ...


class Mailbox(Protocol):
    """Messages, events and streams outside any workflow."""

    def send_message(
        self, destination: str, topic: str, message_uuid: str, message: str
    ) -> Sent: ...

    def send_bulk(self, messages: Sequence[Outgoing], to_forks: bool) -> BulkSent: ...

    def get_event(self, workflow_uuid: str, key: str) -> str | None: ...

    def get_all_events(self, workflow_uuid: str) -> dict[str, str]: ...

    def read_stream(
        self, workflow_uuid: str, key: str, offset: int
    ) -> tuple[str, str | None] | None: ...


class Notifications(Protocol):
    """Wake-ups for waiters outside any workflow (a lost one costs latency only)."""

    def subscribe(self, channel: str, payload: str) -> AbstractContextManager[threading.Event]: ...

    def subscribe_async(
        self, channel: str, payload: str
    ) -> AbstractAsyncContextManager[asyncio.Event]: ...


class EngineStore(Protocol):
    """The system database as the engine sees it."""

    @property
    def executions(self) -> Executions: ...

    @property
    def workflows(self) -> OutcomeReader: ...

    @property
    def messages(self) -> Mailbox: ...

    @property
    def notifications(self) -> Notifications: ...
