"""One claimed execution in the in-memory store: each method is the statement of
:class:`~celery_durable.store.execution.WorkflowExecution` (or of its
:class:`~celery_durable.store.execution_messages.ExecutionMessages`) it stands for, in
Python."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, Wait
from celery_durable.store.bulk_sending import BulkSent, Outgoing
from celery_durable.store.channels import EVENTS_CHANNEL, MESSAGES_CHANNEL, STREAMS_CHANNEL
from celery_durable.store.fence import FenceLost
from celery_durable.store.rows import Claim, Received, Rescheduled, Sent, Woken
from tests.unit.memory_tables import Tables


class MemoryExecution:
    """An execution that holds its workflow's fence (while ``fenced``)."""

    def __init__(
        self,
        tables: Tables,
        notify: Callable[[str, str], None],
        workflow_uuid: str,
        claim: Claim,
        owner_token: int,
    ) -> None:
        self._tables = tables
        self._notify = notify
        self._owner_token = owner_token
        self.workflow_uuid = workflow_uuid
        self.claim = claim
        self.fenced = claim.outcome == "claimed"
        self.in_canvas = False
        # A test's stand-in for a dropped fence connection (see check_fence).
        self.fence_lost = False
        self.messages = MemoryExecutionMessages(tables, notify, workflow_uuid)

    def check_fence(self, action: Callable[[], str]) -> None:
        if self.fenced and self.fence_lost:
            raise FenceLost(f"{action()}: the fence was lost")

    def record_step(self, step: StepRecord) -> str | None:
        with self._tables.transaction() as tables:
            row = tables.workflows.get(self.workflow_uuid)
            if row is None or row.owner_token != self._owner_token:
                raise FenceLost(
                    f"Workflow {self.workflow_uuid} belongs to another execution now: "
                    f"step {step.function_id} was not recorded"
                )
            recorded = tables.upsert_step(self.workflow_uuid, step)
            return row.status if recorded else None

    def complete(self, status: str, *, output: str | None, error: str | None) -> bool:
        with self._tables.transaction() as tables:
            row = tables.workflows[self.workflow_uuid]
            if row.status != "PENDING":
                self.release()
                return False
            row.status, row.output, row.error = status, output, error
            row.execution_active = False
            self._let_go()
            return True

    def reschedule(
        self,
        *,
        due_at_epoch_ms: int,
        parked: bool,
        wait: Wait | None = None,
        checkpoint: StepRecord | None = None,
    ) -> Rescheduled | None:
        now = now_epoch_ms()
        with self._tables.transaction() as tables:
            row = tables.workflows[self.workflow_uuid]
            if row.status != "PENDING":
                self.release()
                return None
            if checkpoint is not None and (
                row.owner_token != self._owner_token
                or not tables.upsert_step(self.workflow_uuid, checkpoint)
            ):
                self.release()
                return None
            ready, waited = False, None
            if wait is not None:
                ready, waited = _ready(tables, wait), _wait_key(wait)
            go_now = ready or row.wake_requested
            row.execution_active = False
            row.dispatch_generation += 1
            row.next_dispatch_at_epoch_ms = now if go_now else due_at_epoch_ms
            row.dispatch_parked = parked and not go_now
            row.wake_requested = False
            row.wait_key = None if ready else waited
            self._let_go()
            return Rescheduled(
                generation=row.dispatch_generation,
                due_at_epoch_ms=row.next_dispatch_at_epoch_ms,
                parked=row.dispatch_parked,
            )

    def release(self) -> None:
        if not self.fenced:
            return
        with self._tables.transaction() as tables:
            row = tables.workflows[self.workflow_uuid]
            if row.status == "PENDING":
                row.execution_active = False
                row.next_dispatch_at_epoch_ms = now_epoch_ms()
                row.wait_key = None
            self._let_go()

    def _let_go(self) -> None:
        self.fenced = False
        self._tables.fences.discard(self.workflow_uuid)


class MemoryExecutionMessages:
    """An execution's messages, events and streams (``MemoryExecution.messages``)."""

    def __init__(
        self, tables: Tables, notify: Callable[[str, str], None], workflow_uuid: str
    ) -> None:
        self._tables = tables
        self._notify = notify
        self.workflow_uuid = workflow_uuid

    def _status(self) -> str | None:
        row = self._tables.workflows.get(self.workflow_uuid)
        return None if row is None else row.status

    def send_message(
        self, destination: str, topic: str, message_uuid: str, message: str, function_id: int
    ) -> Sent:
        with self._tables.transaction() as tables:
            sent = tables.send(
                destination,
                topic,
                message_uuid,
                message,
                now_epoch_ms(),
                sender=(self.workflow_uuid, function_id),
            )
        if sent.outcome == "sent":
            self._notify(MESSAGES_CHANNEL, f"{destination}::{topic}")
        return sent

    def send_bulk(
        self, messages: Sequence[Outgoing], to_forks: bool, function_id: int, function_name: str
    ) -> BulkSent:
        raise NotImplementedError("send_bulk runs against PostgreSQL: tests/integration")

    def receive(
        self, *, function_id: int, topic: str, deadline_function_id: int, deadline: str
    ) -> Received:
        now = now_epoch_ms()
        with self._tables.transaction() as tables:
            tables.record_operation(
                self.workflow_uuid, deadline_function_id, "DBOS.sleep", deadline, now
            )
            for message in tables.messages:
                if (
                    message.destination == self.workflow_uuid
                    and message.topic == topic
                    and message.consumed_by_function_id is None
                ):
                    message.consumed_by_function_id = function_id
                    tables.record_operation(
                        self.workflow_uuid, function_id, "DBOS.recv", message.message, now
                    )
                    return Received(
                        found=True, value=message.message, workflow_status=self._status()
                    )
            return Received(found=False, value=None, workflow_status=self._status())

    def get_event(
        self, *, function_id: int, target: str, key: str, deadline_function_id: int, deadline: str
    ) -> Received:
        now = now_epoch_ms()
        with self._tables.transaction() as tables:
            tables.record_operation(
                self.workflow_uuid, deadline_function_id, "DBOS.sleep", deadline, now
            )
            value = tables.events.get((target, key))
            if value is None:
                return Received(found=False, value=None, workflow_status=self._status())
            tables.record_operation(self.workflow_uuid, function_id, "DBOS.getEvent", value, now)
            return Received(found=True, value=value, workflow_status=self._status())

    def set_event(self, *, function_id: int, key: str, value: str, record: bool) -> list[Woken]:
        now = now_epoch_ms()
        with self._tables.transaction() as tables:
            if record and function_id in tables.steps[self.workflow_uuid]:
                return []  # replayed
            tables.events[(self.workflow_uuid, key)] = value
            if record:
                tables.record_operation(self.workflow_uuid, function_id, "DBOS.setEvent", None, now)
            woken = tables.wake_waiters(f"event:{self.workflow_uuid}::{key}", now, destination=None)
            result = [
                Woken(workflow_uuid=uuid, dispatch=tables.workflows[uuid].dispatch())
                for uuid in woken
            ]
        self._notify(EVENTS_CHANNEL, f"{self.workflow_uuid}::{key}")
        return result

    def write_stream(
        self, *, key: str, value: str, function_id: int, record_name: str | None
    ) -> int | None:
        now = now_epoch_ms()
        with self._tables.transaction() as tables:
            if record_name is not None and function_id in tables.steps[self.workflow_uuid]:
                return None
            stream = tables.streams[(self.workflow_uuid, key)]
            stream.append(value)
            if record_name is not None:
                tables.record_operation(self.workflow_uuid, function_id, record_name, None, now)
        self._notify(STREAMS_CHANNEL, f"{self.workflow_uuid}::{key}")
        return len(stream) - 1


def _wait_key(wait: Wait) -> str:
    if wait.kind == "msg":
        return f"msg:{wait.key}"
    return f"event:{wait.target}::{wait.key}"


def _ready(tables: Tables, wait: Wait) -> bool:
    """Whether what the workflow waits for is already there (``reschedule_to_wait``)."""
    if wait.kind == "msg":
        return any(
            m.destination == wait.target
            and m.topic == wait.key
            and m.consumed_by_function_id is None
            for m in tables.messages
        )
    return (wait.target, wait.key) in tables.events
