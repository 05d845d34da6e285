"""Producers and operators: the client, cancel/resume/fork, sleep, children, queues."""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowFunctionNotFoundError,
)
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import REDIS_URL, Faults, _faults, fault_database, wait_until

__all__ = ["fault_database"]  # a fixture used below

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@pytest.fixture
def client(worker: Any, celery_app: Celery) -> Iterator[DBOSClient]:
    # What a worker does at start-up (the in-process test worker sends no worker_ready).
    DBOS._service().runtime.operator.register_served("tests@worker")
    # The producer's app: a plain one with the workers' routing (the test queue).
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


@DBOS.step()
def mark(name: str) -> str:
    calls[name] += 1
    return name


@DBOS.step(max_attempts=3, interval_seconds=2.0)
def fails_once_then_waits(name: str) -> str:
    calls[name] += 1
    if calls[name] == 1:
        raise ConnectionError("first attempt fails")
    return name


@DBOS.workflow()
def mark_then_backoff() -> list[str]:
    return [mark("first"), fails_once_then_waits("second"), mark("third")]


@DBOS.workflow()
def five_steps() -> list[str]:
    return [mark(f"step{i}") for i in range(5)]


# -- the client ----------------------------------------------------------------------


def test_client_enqueue_twice_with_one_id_runs_once(client: DBOSClient) -> None:
    workflow_id = f"client-{uuid.uuid4()}"
    options = {"workflow_name": "five_steps", "workflow_id": workflow_id}
    first = client.enqueue(options)  # type: ignore[arg-type]
    second = client.enqueue(options)  # type: ignore[arg-type]
    assert first.workflow_id == second.workflow_id == workflow_id
    assert second.get_result(timeout=30) == [f"step{i}" for i in range(5)]
    assert calls == Counter({f"step{i}": 1 for i in range(5)})
    assert client.retrieve_workflow(workflow_id).get_status().status == "SUCCESS"
    assert [w.workflow_id for w in client.list_workflows(workflow_ids=[workflow_id])] == [
        workflow_id
    ]


def test_client_refuses_a_name_no_worker_registered(client: DBOSClient) -> None:
    with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="No worker has registered"):
        client.enqueue({"workflow_name": "never_deployed"})
    ahead = client.enqueue({"workflow_name": "never_deployed", "allow_unregistered": True})
    assert ahead.get_status().status == "ENQUEUED"


def test_deduplication_rejects_a_second_active_workflow(client: DBOSClient) -> None:
    options: Any = {
        "workflow_name": "mark_then_backoff",
        "queue_name": TEST_QUEUE,
        "deduplication_id": f"dedup-{uuid.uuid4()}",
    }
    first = client.enqueue(options)
    with pytest.raises(DBOSQueueDeduplicatedError) as raised:
        client.enqueue(options)
    assert str(raised.value).endswith(
        f"was deduplicated due to an existing workflow in queue {TEST_QUEUE} with "
        f"deduplication ID {options['deduplication_id']}."
    )
    assert first.get_result(timeout=30) == ["first", "second", "third"]
    # Finished: the id is free again.
    assert client.enqueue(options).get_result(timeout=30) == ["first", "second", "third"]


# -- cancel, resume, fork ------------------------------------------------------------


def test_cancel_during_backoff_then_resume_without_rerunning_steps(
    client: DBOSClient,
) -> None:
    handle = DBOS.start_workflow(mark_then_backoff)

    def in_backoff() -> bool:
        steps = DBOS.list_workflow_steps(handle.workflow_id)
        return len(steps) == 2 and steps[1]["completed_at_epoch_ms"] is None

    wait_until(in_backoff, 30, "the second step to wait for its retry")
    client.cancel_workflow(handle.workflow_id)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=10)
    time.sleep(3)  # past the retry's due time: the cancelled retry never ran
    assert calls == Counter({"first": 1, "second": 1})
    assert handle.get_status().status == "CANCELLED"

    resumed = client.resume_workflow(handle.workflow_id)
    assert resumed.get_result(timeout=30) == ["first", "second", "third"]
    assert calls == Counter({"first": 1, "second": 2, "third": 1})


@DBOS.step()
def slow_mark(name: str) -> str:
    calls[name] += 1
    time.sleep(1.0)
    return name


@DBOS.workflow()
def slow_then_more() -> list[str]:
    return [slow_mark("slow"), mark("after")]


def test_cancel_stops_a_running_workflow_at_its_next_step_boundary() -> None:
    handle = DBOS.start_workflow(slow_then_more)
    wait_until(lambda: calls["slow"] == 1, 30, "the slow step to start")
    DBOS.cancel_workflow(handle.workflow_id)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=10)
    time.sleep(1.5)
    # The running step finished and its outcome was kept; the next never started.
    assert calls == Counter({"slow": 1})
    assert [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [
        "slow_mark"
    ]


def test_fork_from_step_3_of_5_reruns_steps_3_to_5_only() -> None:
    workflow_id = f"fork-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert DBOS.start_workflow(five_steps).get_result(timeout=30)
    # As in DBOS: steps are numbered from 1, and forking from step 3 re-runs 3, 4 and 5.
    forked = DBOS.fork_workflow(workflow_id, start_step=3)
    assert forked.workflow_id != workflow_id
    assert forked.get_result(timeout=30) == [f"step{i}" for i in range(5)]
    assert calls == Counter({"step0": 1, "step1": 1, "step2": 2, "step3": 2, "step4": 2})
    # Step 1 (or anything below it) re-runs everything.
    assert DBOS.fork_workflow(workflow_id, start_step=1).get_result(timeout=30)
    assert calls == Counter({"step0": 2, "step1": 2, "step2": 3, "step3": 3, "step4": 3})


# -- durable sleep -------------------------------------------------------------------


@DBOS.workflow()
def sleeper(seconds: float) -> float:
    started = time.time()
    DBOS.sleep(seconds)
    mark("woke")
    return time.time() - started


def test_a_long_sleep_leaves_the_worker_free() -> None:
    handle = DBOS.start_workflow(sleeper, 8.0)
    wait_until(
        lambda: len(DBOS.list_workflow_steps(handle.workflow_id)) == 1, 30, "the sleep to start"
    )
    # Both of the worker's slots are free while it sleeps: others run meanwhile.
    others = [DBOS.start_workflow(five_steps) for _ in range(4)]
    for other in others:
        assert other.get_result(timeout=20)
    assert handle.get_status().status == "PENDING"
    assert calls["woke"] == 0
    slept = handle.get_result(timeout=60)
    [sleep_step, _] = DBOS.list_workflow_steps(handle.workflow_id)
    assert sleep_step["function_name"] == "DBOS.sleep"
    status = handle.get_status()
    assert status.completed_at_epoch_ms is not None
    assert status.completed_at_epoch_ms >= sleep_step["output"]  # never woke early
    assert slept >= 0  # the replay measured only its own run
    assert calls["woke"] == 1


crash: dict[str, bool] = {}
slept_for: list[float] = []


class SimulatedCrash(BaseException):
    pass


@DBOS.workflow()
def sleep_then_crash() -> str:
    started = time.monotonic()
    DBOS.sleep(0.5)
    slept_for.append(time.monotonic() - started)
    if crash.pop("now", False):
        raise SimulatedCrash()
    return "done"


def test_a_replay_after_the_wake_up_time_does_not_sleep_again() -> None:
    workflow_id = f"sleep-{uuid.uuid4()}"
    crash["now"] = True
    slept_for.clear()
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        sleep_then_crash()
    with SetWorkflowID(workflow_id):
        assert sleep_then_crash() == "done"
    # The first run slept its half second (to the millisecond of its recorded wake-up
    # time); the replay, past that time, returned from DBOS.sleep at once: a second sleep
    # would take the half second again. Both bounds follow from the sleep itself, not
    # from the machine's speed: returning from a recorded sleep is one in-memory lookup.
    first, replay = slept_for
    assert first >= 0.45
    assert replay < 0.45


# -- child workflows -----------------------------------------------------------------


@DBOS.workflow()
def child_wf(value: int) -> int:
    mark(f"child{value}")
    return value * 10


@DBOS.workflow()
def parent_wf() -> list[int]:
    results = [child_wf(1), child_wf(2)]
    started = DBOS.start_workflow(child_wf, 3)
    results.append(started.get_result())
    return results


def test_child_workflows_called_directly_get_deterministic_ids() -> None:
    workflow_id = f"parent-{uuid.uuid4()}"
    for _ in range(2):
        with SetWorkflowID(workflow_id):
            assert parent_wf() == [10, 20, 30]
    assert calls == Counter({"child1": 1, "child2": 1, "child3": 1})
    steps = DBOS.list_workflow_steps(workflow_id)
    # As DBOS records them: a direct call is the child's start, then its result.
    assert [(s["function_name"], s["child_workflow_id"]) for s in steps] == [
        ("child_wf", f"{workflow_id}-1"),
        ("DBOS.getResult", f"{workflow_id}-1"),
        ("child_wf", f"{workflow_id}-3"),
        ("DBOS.getResult", f"{workflow_id}-3"),
        ("child_wf", f"{workflow_id}-5"),
        ("DBOS.getResult", f"{workflow_id}-5"),
    ]
    child = DBOS.retrieve_workflow(f"{workflow_id}-1").get_status()
    assert child.parent_workflow_id == workflow_id and child.output == 10


def test_a_parent_with_children_on_one_worker_process_does_not_deadlock(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _faults(REDIS_URL, tmp_path):
        faults.start_worker(concurrency=1)
        handle = faults.enqueue("parent_of_children")
        assert handle.get_result(timeout=60) == [10, 20, 30]
        for function_id in (1, 3, 5):  # each child's start (then its DBOS.getResult)
            child = faults.client.retrieve_workflow(f"{handle.workflow_id}-{function_id}")
            assert child.get_status().parent_workflow_id == handle.workflow_id


def test_an_async_parent_awaiting_a_started_child_frees_the_only_slot(
    fault_database: str, tmp_path: Path
) -> None:
    # With one slot, a parent that held it while polling would starve its own child.
    for faults in _faults(REDIS_URL, tmp_path):
        faults.start_worker(concurrency=1)
        handle = faults.enqueue("async_parent_of_child")
        assert handle.get_result(timeout=60) == 40
        steps = faults.client.list_workflow_steps(handle.workflow_id)
        assert [(s["function_id"], s["function_name"]) for s in steps] == [
            (1, "child"),
            (2, "DBOS.getResult"),
        ]
        assert steps[1]["child_workflow_id"] == f"{handle.workflow_id}-1"


# -- queues --------------------------------------------------------------------------


def _spans(faults: Faults, ids: list[str]) -> list[tuple[int, int, str]]:
    spans = []
    for workflow_id in ids:
        [step] = faults.client.list_workflow_steps(workflow_id)
        executor = faults.client.retrieve_workflow(workflow_id).get_status().executor_id
        spans.append((step["started_at_epoch_ms"], step["completed_at_epoch_ms"], str(executor)))
    return spans


def _max_overlap(spans: list[tuple[int, int, str]]) -> int:
    events = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _is_pending(handle: Any) -> bool:
    return bool(handle.get_status().status == "PENDING")


def _queue_faults(tmp_path: Path, limits: str) -> Iterator[Faults]:
    for faults in _faults(REDIS_URL, tmp_path):
        faults.env["CD_FAULT_QUEUE_LIMITS"] = limits
        yield faults


def _both_ready(faults: Faults) -> bool:
    return faults.worker_log().count(" ready.") >= 2


def test_global_concurrency_of_2_holds_across_2_workers_of_4_slots(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _queue_faults(tmp_path, '{"concurrency": 2}'):
        faults.start_worker(concurrency=4)
        faults.start_worker(concurrency=4)
        # Both consuming before any work exists: a worker that starts late finds the
        # other one done with all eight (as it did, one run in three on a busy machine).
        wait_until(partial(_both_ready, faults), 60, "both workers")
        handles = [faults.enqueue("occupy", 0.4) for _ in range(8)]
        ids = [h.get_result(timeout=90) for h in handles]
        spans = _spans(faults, ids)
        assert _max_overlap(spans) == 2
        assert len({executor for _, _, executor in spans}) == 2  # both workers served


def test_worker_concurrency_of_1_holds_per_worker(fault_database: str, tmp_path: Path) -> None:
    for faults in _queue_faults(tmp_path, '{"worker_concurrency": 1}'):
        faults.start_worker(concurrency=4)
        faults.start_worker(concurrency=4)
        handles = [faults.enqueue("occupy", 0.3) for _ in range(8)]
        spans = _spans(faults, [h.get_result(timeout=90) for h in handles])
        by_worker: dict[str, list[tuple[int, int, str]]] = {}
        for span in spans:
            by_worker.setdefault(span[2], []).append(span)
        assert all(_max_overlap(s) == 1 for s in by_worker.values())
        assert _max_overlap(spans) <= 2


def test_a_limiter_of_5_per_2_seconds_holds_over_15_workflows(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _queue_faults(tmp_path, '{"limiter": {"limit": 5, "period": 2}}'):
        faults.start_worker(concurrency=4)
        faults.start_worker(concurrency=4)
        handles = [faults.enqueue("occupy", 0.0) for _ in range(15)]
        for handle in handles:
            handle.get_result(timeout=90)
        starts = sorted(
            int(
                faults.client.retrieve_workflow(h.workflow_id).get_status().started_at_epoch_ms or 0
            )
            for h in handles
        )
        for index, start in enumerate(starts):
            in_window = [s for s in starts[index:] if s < start + 2000]
            assert len(in_window) <= 5, starts
        assert starts[-1] - starts[0] >= 4000  # three windows were needed


def test_priorities_are_honoured_under_a_concurrency_limit(
    fault_database: str, tmp_path: Path
) -> None:
    limits = '{"concurrency": 1, "priority_enabled": true}'
    for faults in _queue_faults(tmp_path, limits):
        faults.start_worker(concurrency=2)
        blocker = faults.enqueue("occupy", 1.5)
        wait_until(functools.partial(_is_pending, blocker), 30, "the blocker to be admitted")
        handles = {}
        for priority in [5, 1, 4, 2, 3]:
            handles[priority] = faults.client.enqueue(
                {
                    "workflow_name": "occupy",
                    "queue_name": faults.queue,
                    "priority": priority,
                    "allow_unregistered": True,
                },
                0.0,
            )
        for handle in handles.values():
            handle.get_result(timeout=90)
        started = {p: h.get_status().started_at_epoch_ms for p, h in handles.items()}
        assert sorted(started, key=lambda p: started[p] or 0) == [1, 2, 3, 4, 5]


def test_an_hour_long_sleep_holds_no_worker_slot_and_no_broker_eta() -> None:
    import psycopg

    handle = DBOS.start_workflow(sleeper, 3600.0)

    def parked() -> bool:
        with psycopg.connect(DATABASE_URL) as connection:
            row = connection.execute(
                "SELECT dispatch_parked, next_dispatch_at_epoch_ms - updated_at_epoch_ms "
                "FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
                (handle.workflow_id,),
            ).fetchone()
        return bool(row and row[0] and row[1] > 3_500_000)

    # Parked in PostgreSQL (the sweep publishes it when due): no countdown message.
    wait_until(parked, 30, "the hour-long sleep to be parked")
    assert DBOS.start_workflow(five_steps).get_result(timeout=20)  # the worker is free
    DBOS.cancel_workflow(handle.workflow_id)
    assert handle.get_status().status == "CANCELLED"
