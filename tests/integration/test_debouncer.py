"""DBOS 3.4's debouncing: ``Debouncer`` and ``DebouncerClient`` on a real Celery worker
(the session worker keeps time: it enqueues a DELAYED workflow when its delay ends)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from celery_durable import (
    DBOS,
    DBOSClient,
    Debouncer,
    DebouncerClient,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from celery_durable.error import DBOSException, DBOSQueueDeduplicatedError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")

LONG = 1_000_000  # a period that keeps a workflow DELAYED until a debounce shortens it

# No worker consumes it: what is enqueued there stays ENQUEUED.
idle_queue = Queue("debouncer-idle")


@DBOS.workflow()
def debounced_echo(value: int) -> int:
    return value


@DBOS.workflow()
async def debounced_echo_async(value: int) -> int:
    return value


def key() -> str:
    return f"key-{uuid.uuid4()}"


def status_of(workflow_id: str) -> Any:
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None
    return status


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


def test_debounces_of_a_key_run_one_workflow_with_the_last_arguments() -> None:
    burst = key()
    first = Debouncer.create(debounced_echo).debounce(burst, LONG, 1)
    assert status_of(first.workflow_id).status == "DELAYED"
    second = Debouncer.create(debounced_echo).debounce(burst, 0.5, 2)
    assert second.workflow_id == first.workflow_id
    assert first.get_result() == 2
    # Once it ran, the key starts a new workflow; SetWorkflowID names it.
    named = f"debounced-{uuid.uuid4()}"
    with SetWorkflowID(named):
        third = Debouncer.create(debounced_echo).debounce(burst, 0.5, 3)
    assert third.workflow_id == named
    assert third.get_result() == 3
    # Different keys are different workflows.
    other = Debouncer.create(debounced_echo).debounce(key(), 0.5, 4)
    assert other.workflow_id not in (first.workflow_id, third.workflow_id)
    assert other.get_result() == 4


def test_the_timeout_caps_how_long_a_burst_holds_the_workflow() -> None:
    debouncer = Debouncer.create(debounced_echo, debounce_timeout_sec=1)
    burst = key()
    first = debouncer.debounce(burst, LONG, 1)
    second = debouncer.debounce(burst, LONG, 2)
    assert second.workflow_id == first.workflow_id
    assert first.get_result() == 2  # ran at the timeout, not after LONG


def test_a_debounce_on_a_queue_takes_the_blocks_options(registered_queue: Queue) -> None:
    debouncer = Debouncer.create(debounced_echo, queue=registered_queue)
    burst = key()
    with SetWorkflowTimeout(30), SetEnqueueOptions(app_version=DBOS.application_version):
        first = debouncer.debounce(burst, LONG, 1)
        second = debouncer.debounce(burst, 0.5, 2)
    assert second.workflow_id == first.workflow_id
    assert second.get_result() == 2
    status = status_of(first.workflow_id)
    assert status.queue_name == registered_queue.name
    assert status.workflow_timeout_ms == 30_000
    by_name = Debouncer.create(debounced_echo, queue=registered_queue.name)
    handle = by_name.debounce(key(), 0.5, 5)
    assert handle.get_result() == 5
    assert status_of(handle.workflow_id).queue_name == registered_queue.name


@pytest.fixture
def registered_queue() -> Iterator[Queue]:
    queue = DBOS.register_queue(f"debounce-queue-{uuid.uuid4()}")
    yield queue
    DBOS.delete_queue(queue.name)


def test_async_debouncing() -> None:
    async def burst() -> tuple[str, str, int]:
        debouncer = Debouncer.create_async(debounced_echo_async)
        burst_key = key()
        first = await debouncer.debounce_async(burst_key, LONG, 1)
        second = await debouncer.debounce_async(burst_key, 0.5, 2)
        return first.workflow_id, second.workflow_id, await second.get_result()

    first_id, second_id, result = asyncio.run(burst())
    assert first_id == second_id
    assert result == 2


def test_the_client_debounces_by_name(client: DBOSClient) -> None:
    options: Any = {"workflow_name": debounced_echo.__qualname__, "queue_name": TEST_QUEUE}
    debouncer = DebouncerClient(client, options)
    burst = key()
    first = debouncer.debounce(burst, LONG, 1)
    second = debouncer.debounce(burst, 0.5, 2)
    assert second.workflow_id == first.workflow_id
    assert second.get_result() == 2
    named = f"client-debounced-{uuid.uuid4()}"
    options["workflow_id"] = named
    assert debouncer.debounce(burst, 0.5, 3).workflow_id == named

    async def burst_async() -> int:
        handle = await DebouncerClient(client, options).debounce_async(key(), 0.5, 4)
        result: int = await handle.get_result()
        return result

    options.pop("workflow_id")
    assert asyncio.run(burst_async()) == 4


started = threading.Event()
release = threading.Event()


@DBOS.workflow()
def blocks(value: int) -> int:
    started.set()
    release.wait(60)
    return value


def test_a_running_workflow_gives_its_key_up() -> None:
    started.clear()
    release.clear()
    debouncer = Debouncer.create(blocks)
    burst = key()
    first = debouncer.debounce(burst, 0.2, 1)
    assert started.wait(60)
    second = debouncer.debounce(burst, LONG, 2)
    assert second.workflow_id != first.workflow_id
    release.set()
    assert first.get_result() == 1
    DBOS.cancel_workflow(second.workflow_id)


def test_a_cancelled_workflow_gives_its_key_up() -> None:
    debouncer = Debouncer.create(debounced_echo)
    burst = key()
    first = debouncer.debounce(burst, LONG, 1)
    DBOS.cancel_workflow(first.workflow_id)
    second = debouncer.debounce(burst, 0.2, 2)
    assert second.workflow_id != first.workflow_id
    assert second.get_result() == 2


def test_a_key_held_by_another_kind_of_workflow_is_a_conflict() -> None:
    burst = key()
    with SetEnqueueOptions(deduplication_id=f"{debounced_echo.__qualname__}-{burst}"):
        holder = idle_queue.enqueue(debounced_echo, 0)
    with pytest.raises(DBOSQueueDeduplicatedError):
        Debouncer.create(debounced_echo, queue=idle_queue).debounce(burst, 0.2, 1)
    DBOS.cancel_workflow(holder.workflow_id)


def test_options_a_debounce_owns_are_refused() -> None:
    debouncer = Debouncer.create(debounced_echo)
    for options, message in (
        ({"deduplication_id": "mine"}, "deduplication_id"),
        ({"delay_seconds": 1.0}, "delay"),
        ({"priority": 1}, "priority"),
    ):
        with SetEnqueueOptions(**options), pytest.raises(DBOSException, match=message):
            debouncer.debounce(key(), 1, 1)
    with (
        SetWorkflowID(f"x-{uuid.uuid4()}", workflow_id_reuse_policy="reject"),
        pytest.raises(DBOSException, match="reject"),
    ):
        debouncer.debounce(key(), 1, 1)
    with pytest.raises(DBOSException, match="application_name"):
        Debouncer.create(debounced_echo, application_name="elsewhere")
    with pytest.raises(DBOSException, match="debounce_timeout_sec"):
        Debouncer.create(debounced_echo, debounce_timeout_sec=0)


runs: list[int] = []


@DBOS.workflow()
def debounces_from_workflow_code(burst: str) -> str:
    runs.append(1)
    handle = Debouncer.create(debounced_echo).debounce(burst, LONG, 7)
    return handle.workflow_id


def test_a_debounce_in_workflow_code_is_a_checkpointed_step() -> None:
    runs.clear()
    burst = key()
    parent = f"debouncing-parent-{uuid.uuid4()}"
    with SetWorkflowID(parent):
        debounced = debounces_from_workflow_code(burst)
    [step] = DBOS.list_workflow_steps(parent)
    assert (step["function_name"], step["output"]) == ("DBOS.debounce", debounced)
    # A fork past the step replays it: the same workflow, no second debounce.
    assert DBOS.fork_workflow(parent, 2).get_result() == debounced
    assert runs == [1, 1]
    assert status_of(debounced).status == "DELAYED"
    assert len(DBOS.list_workflows(name=debounced_echo.__qualname__, status="DELAYED")) >= 1
    DBOS.cancel_workflow(debounced)


def test_concurrent_debounces_of_a_key_share_one_workflow() -> None:
    debouncer = Debouncer.create(debounced_echo)
    burst = key()
    ids: list[str] = []
    gate = threading.Barrier(6)

    def debounce(value: int) -> None:
        gate.wait(30)
        ids.append(debouncer.debounce(burst, LONG, value).workflow_id)

    threads = [threading.Thread(target=debounce, args=(value,)) for value in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(ids) == 6
    assert len(set(ids)) == 1
    DBOS.cancel_workflow(ids[0])


def test_a_pinned_id_reused_across_a_burst_moves_the_same_workflow() -> None:
    debouncer = Debouncer.create(debounced_echo)
    burst = key()
    pinned = f"pinned-{uuid.uuid4()}"
    with SetWorkflowID(pinned):
        first = debouncer.debounce(burst, LONG, 1)
    with SetWorkflowID(pinned):
        second = debouncer.debounce(burst, 0.2, 2)
    assert first.workflow_id == second.workflow_id == pinned
    assert second.get_result() == 2


@DBOS.workflow()
def debounces_under_a_short_timeout(burst: str) -> str:
    return Debouncer.create(debounced_echo).debounce(burst, LONG, 5).workflow_id


def test_a_workflow_debounced_from_a_workflow_does_not_take_its_deadline() -> None:
    burst = key()
    with SetWorkflowTimeout(0.5):
        parent = DBOS.start_workflow(debounces_under_a_short_timeout, burst)
    debounced = parent.get_result()
    status = status_of(debounced)
    assert (status.status, status.workflow_deadline_epoch_ms) == ("DELAYED", None)
    again = Debouncer.create(debounced_echo).debounce(burst, 0.2, 6)
    assert again.workflow_id == debounced
    assert again.get_result() == 6
