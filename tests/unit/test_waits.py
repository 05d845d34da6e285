"""Durable waits as the engine decides them: sleeps, child workflows, messages, events."""

from __future__ import annotations

from typing import Any

import pytest

from celery_durable.core.records import StepRecord
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import children_and_sleep, events, mailbox
from celery_durable.engine.context import current_workflow
from celery_durable.engine.executor import RunResult
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSNonExistentWorkflowError
from celery_durable.store.rows import Dispatch
from tests.unit.harness import Harness, step


def call_child(spec: WorkflowSpec, *args: Any) -> Any:
    """Calling a workflow from workflow code (what the facade's wrapper does)."""
    context = current_workflow.get()
    assert context is not None
    return children_and_sleep.call_child(context, spec, args, {})


def completed(result: RunResult | RescheduleWorkflow) -> Any:
    assert isinstance(result, RunResult) and result.outcome == "completed", result
    return result.output


def test_a_sleep_records_its_wake_up_time_once(harness: Harness) -> None:
    spec = harness.workflow(lambda: children_and_sleep.sleep_remaining(30))
    harness.enqueue(spec, workflow_id="sleeper")

    first = harness.deliver("sleeper")
    assert isinstance(first, RescheduleWorkflow)
    assert (first.countdown_seconds, first.routine) == (30, True)
    harness.clock.advance(10)
    second = harness.deliver("sleeper", generation=1)
    assert isinstance(second, RescheduleWorkflow) and second.countdown_seconds == 20
    harness.clock.advance(20)
    assert completed(harness.deliver("sleeper", generation=2)) == 0
    [record] = harness.steps("sleeper")
    assert record.function_name == "DBOS.sleep"
    # Completed at its wake-up time, as DBOS records it: its duration is the sleep's.
    assert record.completed_at_epoch_ms is not None
    assert record.completed_at_epoch_ms - record.started_at_epoch_ms == 30_000


def test_a_parent_waits_for_its_child_and_the_child_wakes_it(harness: Harness) -> None:
    child = harness.workflow(step("double", lambda n: 2 * n), "child")
    parent = harness.workflow(lambda: call_child(child, 21) + 1, "parent")
    harness.enqueue(parent, workflow_id="parent")

    waiting = harness.deliver("parent")
    assert isinstance(waiting, RescheduleWorkflow)
    assert waiting.countdown_seconds == harness.launcher.child_poll_seconds
    assert harness.launcher.published == [
        ("parent-1", Dispatch(name=child.name, queue_name=None, generation=0))
    ]
    assert completed(harness.deliver("parent-1")) == 42
    # The child's end published its parent under the parent's next generation.
    assert harness.launcher.published[-1] == (
        "parent",
        Dispatch(name=parent.name, queue_name=None, generation=2),
    )
    assert completed(harness.deliver("parent", generation=2)) == 43
    # Two operations, as DBOS records them: the child's start, then its result.
    start, result = harness.steps("parent")
    assert (start.function_name, start.child_workflow_id, start.output) == (
        child.name,
        "parent-1",
        None,
    )
    assert (result.function_name, result.child_workflow_id, result.output) == (
        "DBOS.getResult",
        "parent-1",
        "42",
    )


def test_a_child_call_recorded_by_the_release_before_replays(harness: Harness) -> None:
    # The release before recorded a direct child call as one operation holding the
    # child's outcome; a workflow resumed after the upgrade replays it, as it was.
    child = harness.workflow(lambda: 1 / 0, "never_runs")
    parent = harness.workflow(lambda: [*call_child(child), 1], "upgraded_parent")
    harness.enqueue(parent, workflow_id="upgraded")
    with harness.store.tables.transaction() as tables:
        tables.upsert_step(
            "upgraded",
            StepRecord(
                function_id=1,
                function_name=child.name,
                output="[0]",
                error=None,
                attempts=1,
                attempt_log=None,
                retry_due_at_epoch_ms=None,
                started_at_epoch_ms=1,
                completed_at_epoch_ms=2,
                child_workflow_id="upgraded-1",
            ),
        )
    assert completed(harness.deliver("upgraded")) == [0, 1]
    assert [s.function_name for s in harness.steps("upgraded")] == [child.name]
    assert harness.launcher.published == []


def test_a_child_that_ends_while_its_parent_runs_makes_the_parent_s_next_wait_short(
    harness: Harness,
) -> None:
    child = harness.workflow(lambda: "child done", "child")

    def parent() -> None:
        context = current_workflow.get()
        assert context is not None
        child_id = children_and_sleep.start_child(context, child, (), {})
        completed(harness.deliver(child_id))  # while the parent executes
        children_and_sleep.sleep_remaining(600)

    harness.enqueue(harness.workflow(parent), workflow_id="busy-parent")
    signal = harness.deliver("busy-parent")
    assert isinstance(signal, RescheduleWorkflow)
    assert signal.countdown_seconds == 0  # woken: due at once, not in 600 s


def test_a_direct_call_runs_its_child_in_process(harness: Harness) -> None:
    child = harness.workflow(step("square", lambda n: n * n), "child")
    parent = harness.workflow(lambda: call_child(child, 7), "parent")
    result = harness.call(parent, workflow_id="direct")

    assert (result.outcome, result.output) == ("completed", 49)
    assert harness.launcher.published == []  # nothing went to the broker
    assert harness.store.tables.workflows["direct-1"].parent_workflow_id == "direct"
    assert harness.outcome("direct-1") == ("SUCCESS", 49)


def test_recv_waits_for_a_message_and_a_send_wakes_it(harness: Harness) -> None:
    spec = harness.workflow(lambda: mailbox.recv("topic", timeout_seconds=60))
    harness.enqueue(spec, workflow_id="receiver")

    waiting = harness.deliver("receiver")
    assert isinstance(waiting, RescheduleWorkflow) and waiting.countdown_seconds == 60
    assert harness.store.tables.workflows["receiver"].wait_key == "msg:topic"
    send = (harness.store, harness.serializer, harness.launcher.publish)
    mailbox.send(*send, "receiver", {"hello": 1}, "topic")
    assert harness.launcher.published == [
        ("receiver", Dispatch(name=spec.name, queue_name=None, generation=2))
    ]
    assert completed(harness.deliver("receiver", generation=2)) == {"hello": 1}


def test_recv_returns_none_at_its_recorded_deadline(harness: Harness) -> None:
    spec = harness.workflow(lambda: mailbox.recv(None, timeout_seconds=60))
    harness.enqueue(spec, workflow_id="patient")
    assert isinstance(harness.deliver("patient"), RescheduleWorkflow)
    harness.clock.advance(45)
    again = harness.deliver("patient", generation=1)
    assert isinstance(again, RescheduleWorkflow) and again.countdown_seconds == 15
    harness.clock.advance(15)
    assert completed(harness.deliver("patient", generation=2)) is None


def test_sends_with_one_idempotency_key_deliver_one_message(harness: Harness) -> None:
    spec = harness.workflow(lambda: [mailbox.recv("t", 0), mailbox.recv("t", 0)])
    harness.enqueue(spec, workflow_id="once")
    send = (harness.store, harness.serializer, harness.launcher.publish)
    mailbox.send(*send, "once", "first", "t", idempotency_key="k")
    mailbox.send(*send, "once", "second", "t", idempotency_key="k")
    assert completed(harness.deliver("once")) == ["first", None]
    with pytest.raises(DBOSNonExistentWorkflowError):
        mailbox.send(*send, "nobody", "lost", "t")


def test_get_event_waits_for_the_event_and_set_event_wakes_it(harness: Harness) -> None:
    reader = harness.workflow(
        lambda: events.get_event(harness.store, harness.serializer, "w", "k"), "reader"
    )
    writer = harness.workflow(lambda: events.set_event("k", "v"), "writer")
    harness.enqueue(reader, workflow_id="r")
    harness.enqueue(writer, workflow_id="w")

    assert isinstance(harness.deliver("r"), RescheduleWorkflow)
    completed(harness.deliver("w"))
    assert harness.launcher.published == [
        ("r", Dispatch(name=reader.name, queue_name=None, generation=2))
    ]
    assert completed(harness.deliver("r", generation=2)) == "v"
    assert events.get_all_events(harness.store, harness.serializer, "w") == {"k": "v"}
