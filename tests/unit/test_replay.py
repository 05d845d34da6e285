"""Replay: recorded operations are not run again, and are numbered the same way."""

from __future__ import annotations

import pytest

from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine import children_and_sleep, events, mailbox, streams
from celery_durable.engine.context import current_workflow
from celery_durable.engine.executor import RunResult
from celery_durable.error import DBOSUnexpectedStepError
from tests.unit.harness import Harness, step


class Crash(BaseException):
    """A worker that dies mid-workflow: nothing is recorded, the fence is let go."""


def test_a_rerun_replays_recorded_steps_and_runs_only_the_rest(harness: Harness) -> None:
    calls: list[str] = []
    crash = [True]

    def first() -> int:
        calls.append("first")
        return 1

    def second() -> int:
        calls.append("second")
        return 2

    first_step, second_step = step("first", first), step("second", second)

    def workflow() -> int:
        value = first_step()
        if crash[0]:
            raise Crash
        return int(value + second_step())

    spec = harness.workflow(workflow)
    harness.enqueue(spec, workflow_id="replay")
    with pytest.raises(Crash):
        harness.deliver("replay")
    crash[0] = False
    result = harness.deliver("replay")

    assert isinstance(result, RunResult)
    assert (result.outcome, result.output) == ("completed", 3)
    assert calls == ["first", "second"]  # the first step ran once
    assert harness.outcome("replay") == ("SUCCESS", 3)


def test_a_recorded_error_is_raised_again_on_replay_without_running_the_step(
    harness: Harness,
) -> None:
    calls: list[int] = []
    crash = [True]

    def failing() -> None:
        calls.append(1)
        raise ValueError("recorded once")

    failing_step = step("failing", failing)
    caught: list[BaseException] = []

    def workflow() -> str:
        try:
            failing_step()
        except ValueError as error:
            caught.append(error)
        if crash[0]:
            raise Crash
        return "done"

    spec = harness.workflow(workflow)
    harness.enqueue(spec, workflow_id="errors")
    with pytest.raises(Crash):
        harness.deliver("errors")
    crash[0] = False
    harness.deliver("errors")

    assert calls == [1]
    assert [(type(e), str(e)) for e in caught] == [(ValueError, "recorded once")] * 2
    [record] = harness.steps("errors")
    assert record.error is not None and record.completed


def test_a_workflow_error_is_recorded_and_a_second_call_returns_it(harness: Harness) -> None:
    def workflow() -> None:
        raise KeyError("the workflow's own")

    spec = harness.workflow(workflow)
    first = harness.call(spec, workflow_id="failed")
    assert (first.outcome, first.status, type(first.error)) == ("completed", "ERROR", KeyError)
    assert harness.outcome("failed")[0] == "ERROR"

    again = harness.call(spec, workflow_id="failed")
    assert again.outcome == "finished"
    assert again.recorded is not None and again.recorded[0] is None
    assert isinstance(harness.serializer.loads(str(again.recorded[1])), KeyError)


def test_operations_are_numbered_in_call_order_and_replay_takes_the_same_ids(
    harness: Harness,
) -> None:
    calls: list[str] = []
    crash = [True]
    before, after = step("before", lambda: calls.append("before")), step("after", calls.append)

    def child_workflow() -> None:
        pass

    child = harness.workflow(child_workflow)

    def numbered() -> None:
        before()  # 1
        children_and_sleep.sleep_remaining(0)  # 2: DBOS.sleep
        mailbox.send(
            harness.store, harness.serializer, harness.launcher.publish, "numbered", "hi", "t"
        )  # 3: DBOS.send
        events.set_event("key", "value")  # 4: DBOS.setEvent
        mailbox.recv("t", timeout_seconds=0)  # 5: DBOS.recv, 6: its deadline's DBOS.sleep
        context = current_workflow.get()
        assert context is not None
        children_and_sleep.start_child(context, child, (), {})  # 7: the child's start
        after("after")  # 8
        if crash[0]:
            raise Crash

    spec = harness.workflow(numbered)
    harness.enqueue(spec, workflow_id="numbered")
    with pytest.raises(Crash):
        harness.deliver("numbered")
    recorded = [(s.function_id, s.function_name) for s in harness.steps("numbered")]
    crash[0] = False
    harness.deliver("numbered")

    assert recorded == [
        (1, "before"),
        (2, "DBOS.sleep"),
        (3, "DBOS.send"),
        (4, "DBOS.setEvent"),
        (5, "DBOS.recv"),
        (6, "DBOS.sleep"),
        (7, "child_workflow"),
        (8, "after"),
    ]
    assert [(s.function_id, s.function_name) for s in harness.steps("numbered")] == recorded
    assert calls == ["before", "after"]  # nothing ran twice
    assert len(harness.store.tables.messages) == 1  # nor was sent twice
    assert harness.steps("numbered")[4].output == harness.serializer.dumps("hi")
    assert harness.steps("numbered")[6].child_workflow_id == "numbered-7"


def test_replay_refuses_code_that_calls_another_function_at_a_recorded_position(
    harness: Harness,
) -> None:
    crash = [True]
    names = ["original"]

    def workflow() -> None:
        step(names[0], lambda: None)()
        if crash[0]:
            raise Crash

    spec = harness.workflow(workflow)
    harness.enqueue(spec, workflow_id="changed")
    with pytest.raises(Crash):
        harness.deliver("changed")
    crash[0], names[0] = False, "renamed"
    result = harness.deliver("changed")

    assert isinstance(result, RunResult) and isinstance(result.error, DBOSUnexpectedStepError)
    assert harness.outcome("changed")[0] == "ERROR"


def test_a_reschedule_releases_the_workflow_under_a_new_generation(harness: Harness) -> None:
    def sleeper() -> None:
        children_and_sleep.sleep_remaining(30)

    spec = harness.workflow(sleeper)
    harness.enqueue(spec, workflow_id="generations")
    signal = harness.deliver("generations")
    assert isinstance(signal, RescheduleWorkflow)
    row = harness.store.tables.workflows["generations"]
    assert (row.status, row.execution_active, row.dispatch_generation) == ("PENDING", False, 1)
    assert "generations" not in harness.store.tables.fences
    # The message of the generation before is stale: it runs nothing.
    stale = harness.deliver("generations", generation=0)
    assert isinstance(stale, RunResult) and stale.outcome == "stale"


def test_stream_writes_are_not_repeated_on_replay(harness: Harness) -> None:
    crash = [True]

    def streamer() -> None:
        streams.write_stream("s", 1)
        streams.write_stream("s", 2)
        streams.close_stream("s")
        if crash[0]:
            raise Crash

    harness.enqueue(harness.workflow(streamer), workflow_id="streamer")
    with pytest.raises(Crash):
        harness.deliver("streamer")
    crash[0] = False
    harness.deliver("streamer")

    read = streams.read_stream(harness.store, harness.serializer, "streamer", "s")
    assert list(read) == [1, 2]
    assert len(harness.store.tables.streams[("streamer", "s")]) == 3  # the close marker too
    names = [s.function_name for s in harness.steps("streamer")]
    assert names == ["DBOS.writeStream", "DBOS.writeStream", "DBOS.closeStream"]
