"""DBOS.asyncio_wait and DBOS.wait_first in workflow code: the answer is recorded (as
DBOS 3.4's ``DBOS.asyncio_wait`` and ``DBOS.waitFirst`` operations) and a replay returns
it; a wait on another workflow frees the worker (engine/first_done.py)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest

from celery_durable import DBOS, SetWorkflowID, WorkflowHandle
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

runs: dict[str, int] = {"fast": 0, "slow": 0}
gate = threading.Event()


@DBOS.step()
async def first_fast(value: str) -> str:
    runs["fast"] += 1
    return f"{value}!"


@DBOS.step()
async def first_slow(value: str) -> str:
    runs["slow"] += 1
    await asyncio.to_thread(gate.wait, 30)
    return f"{value}!"


@DBOS.workflow()
async def first_of_two() -> list[Any]:
    done, pending = await DBOS.asyncio_wait(
        [first_fast("fast"), first_slow("slow")], return_when=asyncio.FIRST_COMPLETED
    )
    first = [task.result() for task in done]
    gate.set()
    done2, pending2 = await DBOS.asyncio_wait(list(pending))
    return [first, len(pending), [task.result() for task in done2], len(pending2)]


def test_asyncio_wait_is_recorded_and_replayed() -> None:
    gate.clear()
    runs.update(fast=0, slow=0)
    handle = DBOS.start_workflow(first_of_two)
    assert handle.get_result(timeout=30) == [["fast!"], 1, ["slow!"], 0]
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    # The wait takes its id before the steps it waits for start.
    assert [(s["function_id"], s["function_name"]) for s in steps] == [
        (1, "DBOS.asyncio_wait"),
        (2, first_fast.__qualname__),
        (3, first_slow.__qualname__),
        (4, "DBOS.asyncio_wait"),
    ]
    assert [steps[0]["output"], steps[3]["output"]] == [[0], [0]]
    # A replay of every operation returns the recorded answers and runs no step.
    gate.clear()
    forked = DBOS.fork_workflow(handle.workflow_id, 100)
    assert forked.get_result(timeout=30) == [["fast!"], 1, ["slow!"], 0]
    assert runs == {"fast": 1, "slow": 1}


@DBOS.workflow()
async def times_out_first() -> list[int]:
    done, pending = await DBOS.asyncio_wait([first_slow("a"), first_slow("b")], timeout=0.1)
    gate.set()
    done2, _ = await DBOS.asyncio_wait(list(pending))
    return [len(done), len(pending), len(done2)]


def test_asyncio_wait_timeout_replays_with_its_steps_in_order() -> None:
    gate.clear()
    runs.update(slow=0)
    handle = DBOS.start_workflow(times_out_first)
    assert handle.get_result(timeout=30) == [0, 2, 2]
    # The replay's first wait returns at once (nothing was done): the steps it left
    # pending still take ids 2 and 3 before the second wait takes 4.
    gate.clear()
    forked = DBOS.fork_workflow(handle.workflow_id, 100)
    assert forked.get_result(timeout=30) == [0, 2, 2]
    assert runs["slow"] == 2


@DBOS.workflow()
async def sleeps_a_moment(seconds: float) -> str:
    await DBOS.sleep_async(seconds)
    return "slept"


@DBOS.workflow()
async def waits_for_children() -> list[Any]:
    children = [await DBOS.start_workflow_async(sleeps_a_moment, 1.0) for _ in range(2)]
    done, pending = await DBOS.asyncio_wait([child.get_result() for child in children])
    return [*sorted(task.result() for task in done), len(pending)]


def test_asyncio_wait_on_children_unwinds_and_records_once_they_finish() -> None:
    handle = DBOS.start_workflow(waits_for_children)
    assert handle.get_result(timeout=60) == ["slept", "slept", 0]
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    names = [s["function_name"] for s in steps]
    # Two child starts, the wait, then the two result waits it was given.
    assert names[2:] == ["DBOS.asyncio_wait", "DBOS.getResult", "DBOS.getResult"]
    assert steps[2]["output"] == [0, 1]


@DBOS.workflow()
def process_when_told(name: str) -> str:
    DBOS.recv("go", timeout_seconds=60)
    return name


@DBOS.workflow()
def first_of_children() -> list[str]:
    handles: list[WorkflowHandle[str]] = [
        DBOS.start_workflow(process_when_told, name) for name in ("a", "b")
    ]
    first = DBOS.wait_first(handles, polling_interval_sec=0.1)
    rest = [h for h in handles if h.workflow_id != first.workflow_id]
    return [first.get_result(), DBOS.wait_first(rest).get_result()]


def test_wait_first_in_workflow_code_is_recorded() -> None:
    workflow_id = f"first-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(first_of_children)
    child_b = f"{workflow_id}-2"
    wait_until(lambda: DBOS.get_workflow_status(child_b) is not None, 30, "the children")
    DBOS.send(child_b, "now", "go")
    assert DBOS.retrieve_workflow(child_b).get_result(timeout=30) == "b"
    DBOS.send(f"{workflow_id}-1", "now", "go")
    assert handle.get_result(timeout=60) == ["b", "a"]
    steps = DBOS.list_workflow_steps(workflow_id)
    names = [s["function_name"] for s in steps]
    assert names[2] == "DBOS.waitFirst" and steps[2]["output"] == child_b
    assert names.count("DBOS.waitFirst") == 2
    # A replay returns the recorded first, though both have finished now.
    forked = DBOS.fork_workflow(workflow_id, 100)
    assert forked.get_result(timeout=30) == ["b", "a"]


@DBOS.workflow()
async def gathers_results(seconds: list[float]) -> list[str]:
    children = [await DBOS.start_workflow_async(sleeps_a_moment, s) for s in seconds]
    return list(await asyncio.gather(*[child.get_result() for child in children]))


def test_async_get_result_in_a_direct_call_leaves_the_loop_free() -> None:
    async def main() -> tuple[list[str], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.create_task(tick())
        workflow_id = f"gathers-{uuid.uuid4().hex[:8]}"
        with SetWorkflowID(workflow_id):
            results = await gathers_results([1.0, 0.1])
        ticker.cancel()
        steps = DBOS.list_workflow_steps(workflow_id)
        # The waits are numbered in the order they were called, whichever ends first.
        assert [(s["function_name"], s["child_workflow_id"]) for s in steps[2:]] == [
            ("DBOS.getResult", f"{workflow_id}-1"),
            ("DBOS.getResult", f"{workflow_id}-2"),
        ]
        return results, ticks

    results, ticks = asyncio.run(main())
    assert results == ["slept", "slept"]
    assert ticks >= 10  # the loop ran on while the workflow waited for its children


@DBOS.step()
async def noted() -> str:
    return "noted"


@DBOS.workflow()
async def first_of_sleepers() -> list[Any]:
    handles = [await DBOS.start_workflow_async(sleeps_a_moment, s) for s in (2.0, 0.1)]
    first, note = await asyncio.gather(
        DBOS.wait_first_async(handles, polling_interval_sec=0.1), noted()
    )
    return [first.workflow_id, await first.get_result(), note]


def test_wait_first_async_in_workflow_code_is_recorded() -> None:
    workflow_id = f"first-async-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(first_of_sleepers)
    assert handle.get_result(timeout=60) == [f"{workflow_id}-2", "slept", "noted"]
    steps = DBOS.list_workflow_steps(workflow_id)
    # The wait takes its id when called, before the step started beside it.
    assert [s["function_name"] for s in steps[2:4]] == ["DBOS.waitFirst", noted.__qualname__]
    assert steps[2]["output"] == f"{workflow_id}-2"
