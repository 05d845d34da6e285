"""The in-memory store of ``tests/unit`` answers as the PostgreSQL store does.

The same scenarios run against both implementations of the engine's store protocol
(``engine/ports.py``): claims, checkpoints, outcomes, reschedules, wake-ups, messages,
events and streams. A rule of the PostgreSQL store that the in-memory one gets wrong
fails here, so the engine's unit tests cannot drift from the real store.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord, Wait
from celery_durable.engine.ports import EngineStore
from celery_durable.store import Dispatch, NewWorkflow, ReportedOutcome, SystemStore
from tests.conftest import DATABASE_URL
from tests.unit.memory_store import MemoryStore

NAME = "tests.contract.workflow"


@pytest.fixture(params=["postgresql", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[EngineStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    request.getfixturevalue("dbos")  # the test database, migrated
    real = SystemStore(DATABASE_URL, pool_size=1)
    yield real
    real.dispose()


def insert(store: Any, status: str = "ENQUEUED", parent: str | None = None) -> str:
    """A new workflow's row (inserting is not the engine's: each store has its method)."""
    workflow_id = f"contract-{uuid.uuid4()}"
    store.workflows.insert_workflow(
        NewWorkflow(
            workflow_uuid=workflow_id,
            name=NAME,
            status=status,  # type: ignore[arg-type]
            queue_name=None,
            inputs='{"args": [], "kwargs": {}}',
            authenticated_user=None,
            max_recovery_attempts=5,
            parent_workflow_id=parent,
        )
    )
    return workflow_id


def record(function_id: int, *, completed: bool = True, attempts: int = 1) -> StepRecord:
    now = now_epoch_ms()
    return StepRecord(
        function_id=function_id,
        function_name="step",
        output=str(function_id),
        error=None,
        attempts=attempts,
        attempt_log=None,
        retry_due_at_epoch_ms=None if completed else now + 60_000,
        started_at_epoch_ms=now,
        completed_at_epoch_ms=now if completed else None,
        max_attempts=3,
    )


def test_claims(store: EngineStore) -> None:
    with store.executions.claim("contract-missing", "a") as missing:
        assert missing.claim.outcome == "missing"
    workflow_id = insert(store)
    with store.executions.claim(workflow_id, "a", generation=0) as first:
        assert (first.claim.outcome, first.claim.status, first.fenced) == (
            "claimed",
            "PENDING",
            True,
        )
        assert first.claim.inputs == '{"args": [], "kwargs": {}}'
        with store.executions.claim(workflow_id, "a") as again:
            assert again.claim.outcome == "busy"
        assert first.complete("SUCCESS", output='"done"', error=None)
        assert not first.fenced
    with store.executions.claim(workflow_id, "a") as finished:
        assert (finished.claim.outcome, finished.claim.status) == ("finished", "SUCCESS")
    assert store.workflows.get_outcome(workflow_id) == (NAME, "SUCCESS", '"done"', None)


def test_checkpoints_are_rewritten_until_complete_and_loaded_in_order(
    store: EngineStore,
) -> None:
    workflow_id = insert(store)
    with store.executions.claim(workflow_id, "a") as execution:
        assert execution.record_step(record(2)) == "PENDING"
        assert execution.record_step(record(1, completed=False)) == "PENDING"
        assert execution.record_step(record(1, attempts=2)) == "PENDING"
        assert execution.record_step(record(1, attempts=3)) is None  # already complete
    with store.executions.claim(workflow_id, "a") as replay:
        loaded = replay.claim.checkpoints
        assert list(loaded) == [1, 2]
        assert (loaded[1].attempts, loaded[1].completed, loaded[1].output) == (2, True, "1")


def test_reschedules_advance_the_generation_and_a_stale_delivery_runs_nothing(
    store: EngineStore,
) -> None:
    workflow_id = insert(store)
    due = now_epoch_ms() + 60_000
    with store.executions.claim(workflow_id, "a", generation=0) as execution:
        rescheduled = execution.reschedule(due_at_epoch_ms=due, parked=True)
        assert rescheduled is not None
        assert (rescheduled.generation, rescheduled.due_at_epoch_ms) == (1, due)
        assert rescheduled.parked and not execution.fenced
    with store.executions.claim(workflow_id, "a", generation=0) as stale:
        assert stale.claim.outcome == "stale"
    with store.executions.claim(workflow_id, "a", generation=1) as current:
        assert current.claim.outcome == "claimed"


def test_a_child_wakes_its_waiting_parent_or_shortens_its_next_wait(store: EngineStore) -> None:
    parent = insert(store)
    with store.executions.claim(parent, "a", generation=0) as running:
        assert store.executions.wake_parent(parent) is None  # executing: asked to hurry
        far = now_epoch_ms() + 600_000
        hurried = running.reschedule(due_at_epoch_ms=far, parked=False)
        assert hurried is not None and hurried.due_at_epoch_ms < far
    assert store.executions.wake_parent(parent) == Dispatch(
        name=NAME, queue_name=None, generation=2
    )
    assert store.executions.wake_parent("contract-nobody") is None


def test_messages(store: EngineStore) -> None:
    receiver = insert(store)
    assert store.messages.send_message("contract-nobody", "t", str(uuid.uuid4()), "x").outcome == (
        "missing"
    )
    with store.executions.claim(receiver, "a", generation=0) as execution:
        nothing = execution.messages.receive(
            function_id=1, topic="t", deadline_function_id=2, deadline="123"
        )
        assert (nothing.found, nothing.value, nothing.workflow_status) == (False, None, "PENDING")
        wait = Wait(kind="msg", target=receiver, key="t")
        assert execution.reschedule(
            due_at_epoch_ms=now_epoch_ms() + 60_000, parked=False, wait=wait
        )
    key = str(uuid.uuid4())
    sent = store.messages.send_message(receiver, "t", key, '"hello"')
    assert (sent.outcome, sent.wake) == ("sent", Dispatch(name=NAME, queue_name=None, generation=2))
    assert store.messages.send_message(receiver, "t", key, '"again"').outcome == "duplicate"
    with store.executions.claim(receiver, "a", generation=2) as execution:
        assert list(execution.claim.checkpoints) == [2]  # the deadline, recorded once
        messages = execution.messages
        got = messages.receive(function_id=1, topic="t", deadline_function_id=2, deadline="9")
        assert (got.found, got.value) == (True, '"hello"')
        assert messages.send_message(receiver, "u", str(uuid.uuid4()), "1", 3).outcome == "sent"
        assert messages.send_message(receiver, "u", str(uuid.uuid4()), "1", 3).outcome == (
            "replayed"
        )
    names = {s.function_id: s.function_name for s in _steps(store, receiver)}
    assert names == {1: "DBOS.recv", 2: "DBOS.sleep", 3: "DBOS.send"}


def test_events_wake_their_waiters(store: EngineStore) -> None:
    writer, reader = insert(store), insert(store)
    with store.executions.claim(reader, "a", generation=0) as waiting:
        absent = waiting.messages.get_event(
            function_id=1, target=writer, key="k", deadline_function_id=2, deadline="1"
        )
        assert not absent.found
        wait = Wait(kind="event", target=writer, key="k")
        assert waiting.reschedule(due_at_epoch_ms=now_epoch_ms() + 60_000, parked=False, wait=wait)
    with store.executions.claim(writer, "a") as execution:
        woken = execution.messages.set_event(function_id=1, key="k", value='"v"', record=True)
        assert [(w.workflow_uuid, w.dispatch.generation) for w in woken] == [(reader, 2)]
        assert execution.messages.set_event(function_id=1, key="k", value='"w"', record=True) == []
    assert store.messages.get_event(writer, "k") == '"v"'
    assert store.messages.get_all_events(writer) == {"k": '"v"'}


def test_streams(store: EngineStore) -> None:
    workflow_id = insert(store)
    with store.executions.claim(workflow_id, "a") as execution:
        messages = execution.messages
        assert messages.write_stream(key="s", value="1", function_id=1, record_name="w") == 0
        assert messages.write_stream(key="s", value="2", function_id=2, record_name="w") == 1
        assert messages.write_stream(key="s", value="x", function_id=1, record_name="w") is None
    assert store.messages.read_stream(workflow_id, "s", 1) == ("PENDING", "2")
    assert store.messages.read_stream(workflow_id, "s", 2) == ("PENDING", None)
    assert store.messages.read_stream("contract-nobody", "s", 0) is None


def test_an_outcome_is_not_written_over_a_cancellation(store: EngineStore) -> None:
    workflow_id = insert(store)
    with store.executions.claim(workflow_id, "a") as execution:
        _cancel(store, workflow_id)
        assert execution.record_step(record(1)) == "CANCELLED"
        assert not execution.complete("SUCCESS", output="1", error=None)
        assert execution.reschedule(due_at_epoch_ms=now_epoch_ms(), parked=False) is None
    assert store.workflows.get_outcome(workflow_id) == (NAME, "CANCELLED", None, None)


def test_a_task_outcome_is_recorded_once_and_claims_the_workflow_it_wakes(
    store: EngineStore,
) -> None:
    workflow_id = insert(store)
    task_id = f"{workflow_id}:task:1:1"
    in_flight = dataclasses.replace(
        record(1, completed=False), output=None, child_workflow_id=task_id
    )
    with store.executions.claim(workflow_id, "a", generation=0) as execution:
        parked = execution.reschedule(
            due_at_epoch_ms=now_epoch_ms() + 60_000, parked=True, checkpoint=in_flight
        )
        assert parked is not None and parked.generation == 1
    outcome = ReportedOutcome(function_id=1, task_id=task_id, output='"v"', error=None)
    with store.executions.claim(workflow_id, "b", reported=outcome) as continued:
        assert (continued.claim.outcome, continued.fenced) == ("claimed", True)
        assert continued.claim.woken == Dispatch(name=NAME, queue_name=None, generation=2)
        step = continued.claim.checkpoints[1]
        assert (step.output, step.completed) == ('"v"', True)
    with store.executions.claim(workflow_id, "b", reported=outcome) as duplicate:
        assert (duplicate.claim.outcome, duplicate.fenced) == ("unrecorded", False)
    stale = ReportedOutcome(
        function_id=1, task_id=f"{workflow_id}:task:1:0", output="1", error=None
    )
    with store.executions.claim(workflow_id, "b", reported=stale) as other_attempt:
        assert other_attempt.claim.outcome == "unrecorded"


def _steps(store: Any, workflow_id: str) -> list[StepRecord]:
    return list(store.workflows.list_steps(workflow_id))


def _cancel(store: Any, workflow_id: str) -> None:
    """An operator's cancel (not the engine's: the in-memory store has no operations)."""
    if isinstance(store, MemoryStore):
        store.tables.workflows[workflow_id].status = "CANCELLED"
    else:
        assert store.operations.cancel_workflow(workflow_id)
