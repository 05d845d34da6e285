"""DBOS 3.4's step options and steps by call: ``@DBOS.step(timeout_seconds=,
preemptible=)``, ``DBOS.run_step``/``run_step_async`` with ``StepOptions``, and
``DBOS.reserve_step``/``StepReservation`` — on direct calls and on a real Celery worker."""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, SetWorkflowID, StepOptions, StepReservation
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSStepTimeoutError,
)

calls: Counter[str] = Counter()
cleanups: list[str] = []


@pytest.fixture(autouse=True)
def _reset(dbos: type[DBOS]) -> None:
    calls.clear()
    cleanups.clear()


def new_id() -> str:
    return f"stepopt-{uuid.uuid4()}"


# -- timeouts ----------------------------------------------------------------------------


@DBOS.step(timeout_seconds=0.2, retries_allowed=False)
async def never_finishes() -> str:
    calls["never_finishes"] += 1
    try:
        await asyncio.sleep(600)
    finally:
        cleanups.append("never_finishes")
    return "unreachable"


@DBOS.workflow()
async def catches_timeout() -> str:
    try:
        return await never_finishes()
    except DBOSStepTimeoutError as error:
        return f"timed out after {error.timeout_seconds}"


def test_a_step_past_its_timeout_fails_with_step_timeout_and_is_recorded(
    dbos: type[DBOS],
) -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert asyncio.run(catches_timeout()) == "timed out after 0.2"
    assert calls["never_finishes"] == 1
    assert cleanups == ["never_finishes"]  # cancelled, and its cleanup ran
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert step["output"] is None
    assert isinstance(step["error"], DBOSStepTimeoutError)

    # Called again, the workflow replays the recorded timeout: the body does not run.
    with SetWorkflowID(workflow_id):
        assert asyncio.run(catches_timeout()) == "timed out after 0.2"
    assert calls["never_finishes"] == 1


@DBOS.step(timeout_seconds=5, retries_allowed=True, max_attempts=3, interval_seconds=0)
async def slow_then_quick() -> str:
    calls["slow_then_quick"] += 1
    if calls["slow_then_quick"] == 1:
        await asyncio.sleep(600)
    return "done"


@DBOS.workflow()
async def retries_a_timeout() -> str:
    return await slow_then_quick()


def test_a_timed_out_attempt_is_retried_with_a_fresh_timeout_on_a_worker(
    dbos: type[DBOS], worker: Any
) -> None:
    handle = DBOS.start_workflow(retries_a_timeout)
    assert handle.get_result() == "done"
    assert calls["slow_then_quick"] == 2
    [step] = DBOS.list_workflow_steps(handle.workflow_id)
    assert step["attempts"] == 2
    assert "DBOSStepTimeoutError" in repr(step["attempt_history"][0]["error"])


@DBOS.step(timeout_seconds=0.1, retries_allowed=True, max_attempts=3, interval_seconds=0)
async def always_slow() -> None:
    calls["always_slow"] += 1
    await asyncio.sleep(600)


@DBOS.workflow()
async def exhausts_timeouts() -> None:
    await always_slow()


def test_timeouts_exhaust_the_attempts_like_any_failure(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSMaxStepRetriesExceeded) as raised:
        asyncio.run(exhausts_timeouts())
    assert calls["always_slow"] == 3
    assert all(isinstance(error, DBOSStepTimeoutError) for error in raised.value.errors)


def test_a_timeout_is_inert_outside_a_workflow(dbos: type[DBOS]) -> None:
    @DBOS.step(timeout_seconds=0.01)
    async def short_nap() -> str:
        await asyncio.sleep(0.05)
        return "slept"

    assert asyncio.run(short_nap()) == "slept"


def test_timeouts_and_preemption_are_refused_for_sync_steps_and_bad_values(
    dbos: type[DBOS],
) -> None:
    with pytest.raises(DBOSException, match="only supported for async steps"):

        @DBOS.step(timeout_seconds=1)
        def sync_step() -> None:
            pass

    with pytest.raises(DBOSException, match="only supported for async steps"):

        @DBOS.step(preemptible=True)
        def sync_preemptible() -> None:
            pass

    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(DBOSException, match="positive and finite"):

            @DBOS.step(timeout_seconds=bad)
            async def bad_timeout() -> None:
                pass


async def swallows_cancellation() -> str:
    calls["stubborn"] += 1
    try:
        await asyncio.sleep(600)
    except asyncio.CancelledError:
        cleanups.append("stubborn")
    return "suppressed"


@DBOS.workflow()
def times_out_through_run_step() -> str:
    try:
        return DBOS.run_step(
            {"timeout_seconds": 0.2, "retries_allowed": False}, swallows_cancellation
        )
    except DBOSStepTimeoutError:
        return "timed out"


def test_run_step_times_out_an_async_function_that_swallows_its_cancellation(
    dbos: type[DBOS], worker: Any
) -> None:
    handle = DBOS.start_workflow(times_out_through_run_step)
    assert handle.get_result() == "timed out"
    assert calls["stubborn"] == 1
    assert cleanups == ["stubborn"]
    [step] = DBOS.list_workflow_steps(handle.workflow_id)
    assert isinstance(step["error"], DBOSStepTimeoutError)


# -- preemption ------------------------------------------------------------------------

started = threading.Event()
stopped = threading.Event()


@DBOS.step(preemptible=True)
async def waits_for_cancellation() -> str:
    calls["preemptible"] += 1
    if calls["preemptible"] == 1:
        started.set()
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            stopped.set()
            raise
    return "resumed"


@DBOS.workflow()
async def preemptible_workflow() -> str:
    return await waits_for_cancellation()


def test_a_preemptible_step_stops_when_its_workflow_is_cancelled_and_reruns_on_resume(
    dbos: type[DBOS], worker: Any
) -> None:
    started.clear()
    stopped.clear()
    handle = DBOS.start_workflow(preemptible_workflow)
    assert started.wait(60)
    DBOS.cancel_workflow(handle.workflow_id)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result()
    assert stopped.wait(60)  # the step's coroutine was cancelled (not left sleeping)
    # The preempted attempt recorded nothing: resuming runs the step again.
    assert DBOS.list_workflow_steps(handle.workflow_id) == []
    assert DBOS.resume_workflow(handle.workflow_id).get_result() == "resumed"
    assert calls["preemptible"] == 2


# -- run_step ----------------------------------------------------------------------------


def greet(name: str, step_id: int) -> str:
    assert DBOS.step_id == step_id
    calls["greet"] += 1
    return f"hello {name}"


async def greet_async(name: str, step_id: int) -> str:
    assert DBOS.step_id == step_id
    calls["greet_async"] += 1
    return f"hi {name}"


@DBOS.workflow()
def runs_steps_by_call(name: str) -> list[str]:
    return [
        DBOS.run_step(None, greet, name, 1),
        DBOS.run_step({"name": "named_greeting"}, greet, name, 2),
        DBOS.run_step(None, greet_async, name, 3),
        DBOS.run_step({"name": "concat"}, lambda: name + name),
    ]


def test_run_step_checkpoints_sync_and_async_functions(dbos: type[DBOS], worker: Any) -> None:
    assert DBOS.run_step(None, greet, "outside", None) == "hello outside"
    handle = DBOS.start_workflow(runs_steps_by_call, "ann")
    assert handle.get_result() == ["hello ann", "hello ann", "hi ann", "annann"]
    names = [step["function_name"] for step in DBOS.list_workflow_steps(handle.workflow_id)]
    assert names == [greet.__qualname__, "named_greeting", greet_async.__qualname__, "concat"]
    before = calls.copy()
    # A direct call with the same id replays the checkpoints: nothing runs again.
    with SetWorkflowID(handle.workflow_id):
        assert runs_steps_by_call("ann") == ["hello ann", "hello ann", "hi ann", "annann"]
    assert calls == before


@DBOS.workflow()
async def runs_steps_async(name: str) -> list[str]:
    first = await DBOS.run_step_async(None, greet, name, 1)
    second = await DBOS.run_step_async({"name": "second"}, greet_async, name, 2)
    return [first, second]


def test_run_step_async_checkpoints_sync_and_async_functions(dbos: type[DBOS], worker: Any) -> None:
    handle = DBOS.start_workflow(runs_steps_async, "bo")
    assert handle.get_result() == ["hello bo", "hi bo"]
    names = [step["function_name"] for step in DBOS.list_workflow_steps(handle.workflow_id)]
    assert names == [greet.__qualname__, "second"]


@DBOS.step(max_attempts=5, interval_seconds=0.05, backoff_rate=1)
async def fails_twice(name: str) -> str:
    calls[name] += 1
    if calls[name] <= 2:
        raise ValueError("not yet")
    return name


@DBOS.workflow()
async def gathers_retrying_steps() -> list[Any]:
    tasks = [asyncio.create_task(fails_twice(name)) for name in ("a", "b", "c")]
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_steps_retrying_in_tasks_of_their_own_wait_there_and_never_leak_a_signal(
    dbos: type[DBOS], worker: Any
) -> None:
    # Under Celery a step's retry frees the worker by unwinding the execution; in a task
    # the workflow's code created, that would hand the code our signal as a result.
    handle = DBOS.start_workflow(gathers_retrying_steps)
    assert handle.get_result() == ["a", "b", "c"]
    assert [calls[name] for name in "abc"] == [3, 3, 3]
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    assert [step["attempts"] for step in steps] == [3, 3, 3]


def flaky() -> str:
    calls["flaky"] += 1
    if calls["flaky"] < 3:
        raise ValueError("not yet")
    return "third time"


@DBOS.workflow()
def run_step_with_options() -> str:
    options: StepOptions = {"max_attempts": 3, "interval_seconds": 0, "backoff_rate": 1}
    return DBOS.run_step(options, flaky)


@DBOS.workflow()
def run_step_with_a_timeout_on_a_sync_function() -> None:
    DBOS.run_step({"timeout_seconds": 1}, flaky)


def test_run_step_options_retry_and_are_checked(dbos: type[DBOS]) -> None:
    assert run_step_with_options() == "third time"
    assert calls["flaky"] == 3
    with pytest.raises(DBOSException, match="only supported for async steps"):
        run_step_with_a_timeout_on_a_sync_function()
    with pytest.raises(DBOSException, match="Unknown step options"):
        DBOS.run_step({"retry": True}, flaky)  # type: ignore[typeddict-unknown-key]


def test_run_step_refuses_a_running_event_loop(dbos: type[DBOS]) -> None:
    async def inside_a_loop() -> None:
        DBOS.run_step(None, flaky)

    with pytest.raises(RuntimeError, match="run_step_async"):
        asyncio.run(inside_a_loop())


# -- reserve_step ------------------------------------------------------------------------


@DBOS.workflow()
def reserves_then_runs() -> list[Any]:
    reservation = DBOS.reserve_step()
    later = DBOS.run_step(None, greet, "second", 2)
    first = reservation.run({"name": "reserved"}, greet, "first", reservation.step_id)
    with pytest.raises(DBOSException, match="only be run once"):
        reservation.run(None, greet, "again", 1)
    return [reservation.step_id, first, later]


def test_a_reserved_step_runs_at_its_id_once_and_replays(dbos: type[DBOS]) -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert reserves_then_runs() == [1, "hello first", "hello second"]
    steps = DBOS.list_workflow_steps(workflow_id)
    assert [(step["function_id"], step["function_name"]) for step in steps] == [
        (1, "reserved"),
        (2, greet.__qualname__),
    ]
    assert calls["greet"] == 2
    with SetWorkflowID(workflow_id):
        assert reserves_then_runs() == [1, "hello first", "hello second"]
    assert calls["greet"] == 2


holder: list[StepReservation] = []


@DBOS.workflow()
def reserves_only() -> None:
    holder.append(DBOS.reserve_step())


@DBOS.workflow()
async def reserves_and_runs_async() -> str:
    reservation = DBOS.reserve_step()
    result: str = await reservation.run_async(None, greet_async, "async", 1)
    return result


def test_a_reservation_runs_only_in_its_workflow(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSException, match="must be called from a workflow"):
        DBOS.reserve_step()
    holder.clear()
    reserves_only()
    with pytest.raises(DBOSException, match="must be run from that workflow"):
        holder[0].run(None, greet, "elsewhere", 1)
    assert asyncio.run(reserves_and_runs_async()) == "hi async"


orphans: list[asyncio.Task[Any]] = []


@DBOS.workflow()
async def leaves_a_task_behind() -> None:
    gate = asyncio.Event()

    async def run_late(reservation: StepReservation) -> None:
        await gate.wait()
        await reservation.run_async(None, greet_async, "late", 1)

    orphans.append(asyncio.create_task(run_late(DBOS.reserve_step())))
    orphans.append(asyncio.ensure_future(gate.wait()))
    gate.set()


def test_a_task_outliving_its_workflow_cannot_run_its_reservation(dbos: type[DBOS]) -> None:
    async def scenario() -> None:
        orphans.clear()
        workflow_id = new_id()
        with SetWorkflowID(workflow_id):
            await leaves_a_task_behind()
        with pytest.raises(DBOSException, match="must be run from that workflow"):
            await orphans[0]
        assert DBOS.list_workflow_steps(workflow_id) == []

    asyncio.run(scenario())
    assert calls["greet_async"] == 0
