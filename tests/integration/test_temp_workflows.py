"""Steps and transactions started as workflows (DBOS's temporary workflows,
``<temp>.<step name>``): started, enqueued and started as children, run by a real
Celery worker, listed as DBOS lists them, run once per workflow id, and recovered by
the recovery sweep. A step called outside any workflow records nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from celery_durable import DBOS, DBOSConfiguredInstance, SetWorkflowID
from celery_durable.error import DBOSException, DBOSMaxStepRetriesExceeded
from celery_durable.store import NewWorkflow
from tests.conftest import DATABASE_URL

calls: Counter[str] = Counter()
# A database-backed queue (DBOS 3.x), served by the running worker once registered.
QUEUE = f"temp-{uuid.uuid4().hex[:8]}"
seen_workflow_ids: list[str | None] = []


@pytest.fixture(autouse=True)
def _reset(dbos: type[DBOS], worker: Any) -> None:
    calls.clear()
    seen_workflow_ids.clear()


@pytest.fixture(scope="module", autouse=True)
def _queue(dbos: type[DBOS], worker: Any) -> Iterator[None]:
    DBOS.register_queue(QUEUE)
    yield
    DBOS.delete_queue(QUEUE)


def new_id() -> str:
    return f"temp-{uuid.uuid4()}"


@DBOS.step()
def doubles(value: int) -> int:
    calls["doubles"] += 1
    seen_workflow_ids.append(DBOS.workflow_id)
    return value * 2


@DBOS.step(name="renamed_step")
async def async_greets(name: str) -> str:
    calls["async_greets"] += 1
    return f"hello {name}"


@DBOS.step(max_attempts=2, interval_seconds=0.1)
def temp_wf_fails_twice() -> None:
    calls["temp_wf_fails_twice"] += 1
    raise ValueError("fails")


@DBOS.transaction()
def selects(value: int) -> int:
    calls["selects"] += 1
    return int(DBOS.sql_session.execute(text("SELECT :v + 1"), {"v": value}).scalar_one())


@DBOS.workflow()
def starts_a_step_child(value: int) -> int:
    handle = DBOS.start_workflow(doubles, value)
    return int(handle.get_result())


@DBOS.workflow()
def enqueues_a_failing_step() -> None:
    DBOS.enqueue_workflow(QUEUE, temp_wf_fails_twice).get_result()


@DBOS.dbos_class()
class Multiplier(DBOSConfiguredInstance):
    def __init__(self, factor: int) -> None:
        self.factor = factor
        super().__init__(f"multiplier-{factor}")

    @DBOS.step()
    def times(self, value: int) -> int:
        calls["times"] += 1
        return value * self.factor


by_three = Multiplier(3)


def test_a_started_step_runs_on_a_worker_as_a_named_workflow_of_one_step() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(doubles, 21)
    assert handle.get_result() == 42
    status = handle.get_status()
    assert (status.name, status.status) == (f"<temp>.{doubles.__qualname__}", "SUCCESS")
    assert seen_workflow_ids == [workflow_id]  # the step ran in the temporary workflow
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert (step["function_id"], step["function_name"]) == (1, doubles.__qualname__)
    assert (step["output"], step["error"], step["child_workflow_id"]) == (42, None, None)
    [listed] = DBOS.list_workflows(
        name=f"<temp>.{doubles.__qualname__}", workflow_ids=[workflow_id]
    )
    assert listed.workflow_id == workflow_id

    # Once and only once: the same id returns the first outcome, the step not re-run.
    with SetWorkflowID(workflow_id):
        assert DBOS.start_workflow(doubles, 21).get_result() == 42
    assert calls["doubles"] == 1


def test_an_enqueued_async_step_runs_on_its_queue_and_keeps_its_custom_name() -> None:
    async def enqueue_and_wait() -> tuple[str, Any]:
        handle = await DBOS.enqueue_workflow_async(QUEUE, async_greets, "ann")
        return await handle.get_result(), await handle.get_status()

    result, status = asyncio.run(enqueue_and_wait())
    assert result == "hello ann"
    assert (status.name, status.queue_name) == ("<temp>.renamed_step", QUEUE)
    [step] = DBOS.list_workflow_steps(status.workflow_id)
    assert step["function_name"] == "renamed_step"
    assert calls["async_greets"] == 1


def test_a_failing_step_started_as_a_workflow_ends_in_error_after_its_retries() -> None:
    handle = DBOS.start_workflow(temp_wf_fails_twice)
    with pytest.raises(DBOSMaxStepRetriesExceeded):
        handle.get_result()
    assert handle.get_status().status == "ERROR"
    assert calls["temp_wf_fails_twice"] == 2
    [step] = DBOS.list_workflow_steps(handle.workflow_id)
    assert step["function_name"] == temp_wf_fails_twice.__qualname__
    assert isinstance(step["error"], DBOSMaxStepRetriesExceeded)


def test_a_step_started_from_a_workflow_is_its_child() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert DBOS.start_workflow(starts_a_step_child, 5).get_result() == 10
    started, awaited = DBOS.list_workflow_steps(workflow_id)
    assert started["function_name"] == f"<temp>.{doubles.__qualname__}"
    assert started["child_workflow_id"] == f"{workflow_id}-1"
    assert awaited["function_name"] == "DBOS.getResult"
    child = DBOS.retrieve_workflow(f"{workflow_id}-1").get_status()
    assert (child.name, child.parent_workflow_id) == (
        f"<temp>.{doubles.__qualname__}",
        workflow_id,
    )


def test_a_failing_step_enqueued_from_a_workflow_fails_the_workflow() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id), pytest.raises(DBOSMaxStepRetriesExceeded):
        enqueues_a_failing_step()
    enqueued, awaited = DBOS.list_workflow_steps(workflow_id)
    assert enqueued["function_name"] == f"<temp>.{temp_wf_fails_twice.__qualname__}"
    assert (enqueued["output"], enqueued["error"]) == (None, None)
    assert isinstance(awaited["error"], DBOSMaxStepRetriesExceeded)


def test_a_transaction_and_a_method_step_start_as_workflows() -> None:
    assert DBOS.start_workflow(selects, 6).get_result() == 7
    handle = DBOS.start_workflow(by_three.times, 4)
    assert handle.get_result() == 12
    status = handle.get_status()
    assert (status.name, status.config_name) == (
        f"<temp>.{Multiplier.times.__qualname__}",
        "multiplier-3",
    )
    assert calls == Counter({"selects": 1, "times": 1})


def test_a_step_called_outside_a_workflow_runs_here_and_records_nothing() -> None:
    before = len(DBOS.list_workflows())
    assert doubles(4) == 8
    assert len(DBOS.list_workflows()) == before
    assert seen_workflow_ids == [None]


def test_a_started_step_is_listed_like_a_workflow_after_the_fact() -> None:
    handle = DBOS.start_workflow(doubles, 1)
    handle.get_result()
    names = {w.name for w in DBOS.list_workflows(workflow_ids=[handle.workflow_id])}
    assert names == {f"<temp>.{doubles.__qualname__}"}


def test_the_recovery_sweep_finishes_a_pending_temporary_workflow() -> None:
    # A row left PENDING with no execution (its worker died before running it): the
    # sweep publishes it again by its name, and the worker runs the step.
    lost = new_id()
    store = DBOS._service().runtime.process.store
    store.workflows.insert_workflow(
        NewWorkflow(
            workflow_uuid=lost,
            name=f"<temp>.{doubles.__qualname__}",
            status="PENDING",
            queue_name=None,
            inputs='{"args": [8], "kwargs": {}}',
            authenticated_user=None,
            max_recovery_attempts=100,
        )
    )
    # A finished one made PENDING again (as DBOS's test_recovery_temp_workflow): its
    # recovery returns the recorded step without running it.
    finished = new_id()
    with SetWorkflowID(finished):
        assert DBOS.start_workflow(doubles, 9).get_result() == 18
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute(
            "UPDATE celery_durable.workflow_status SET status = 'PENDING', "
            "next_dispatch_at_epoch_ms = 0 WHERE workflow_uuid = ANY(%s)",
            ([lost, finished],),
        )
    recovered = {r.workflow_uuid for r in DBOS.recover()}
    assert {lost, finished} <= recovered
    assert DBOS.retrieve_workflow(lost).get_result() == 16
    assert DBOS.retrieve_workflow(finished).get_result() == 18
    _wait_for_status(finished, "SUCCESS")
    assert calls["doubles"] == 2  # the lost one's step, and the first run of the other


def _wait_for_status(workflow_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while DBOS.retrieve_workflow(workflow_id).get_status().status != status:
        assert time.monotonic() < deadline, workflow_id
        time.sleep(0.05)


def _shared_name_step(value: int) -> Any:
    @DBOS.step(name="temp_shared_step_name")
    def shared() -> int:
        return value

    return shared


# Two steps of one name (DBOS warns), made at import, before the worker starts.
shadowed_step, current_step = _shared_name_step(1), _shared_name_step(2)


def test_a_step_whose_name_another_step_took_since_is_refused_at_start() -> None:
    # The worker runs <temp>.temp_shared_step_name by name: the first step, started,
    # would run as the second. Refused, and nothing is recorded.
    before = len(DBOS.list_workflows())
    with pytest.raises(DBOSException, match="another step registered the name"):
        DBOS.start_workflow(shadowed_step)
    assert len(DBOS.list_workflows()) == before
    assert DBOS.start_workflow(current_step).get_result() == 2
