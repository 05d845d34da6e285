"""Waiting on, inspecting and managing workflows as DBOS 3.4 does: get_workflow_status,
get_result, wait_first, asyncio_wait, retrieve_workflow_async, delete_workflow(s),
cancel_workflows(cancel_children=), update_workflow_attributes, set_workflow_delay."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import DBOSException, DBOSNonExistentWorkflowError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def client(worker: Any, celery_app: Celery) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


@pytest.fixture
def prefix() -> str:
    return f"manage-{uuid.uuid4().hex[:8]}-"


@DBOS.step()
def triple(value: int) -> int:
    return value * 3


@DBOS.workflow()
def managed(value: int) -> int:
    DBOS.set_event("seen", value)
    return triple(value)


@DBOS.workflow()
def waits_for_go() -> Any:
    return DBOS.recv("go", timeout_seconds=120)


@DBOS.workflow()
def parent_of_waiter(child_id: str) -> Any:
    with SetWorkflowID(child_id):
        child = DBOS.start_workflow(waits_for_go)
    return child.get_result()


def status_of(workflow_id: str) -> str | None:
    found = DBOS.get_workflow_status(workflow_id)
    return None if found is None else found.status


# -- waiting and inspecting -----------------------------------------------------------


def test_get_workflow_status_and_get_result(client: DBOSClient, prefix: str) -> None:
    assert DBOS.get_workflow_status(f"{prefix}missing") is None
    with SetWorkflowID(f"{prefix}done"):
        DBOS.start_workflow(managed, 2).get_result(timeout=30, polling_interval_sec=0.05)
    status = DBOS.get_workflow_status(f"{prefix}done")
    assert status is not None and status.status == "SUCCESS" and status.output == 6
    assert DBOS.get_result(f"{prefix}done") == 6
    assert asyncio.run(DBOS.get_result_async(f"{prefix}done")) == 6
    assert asyncio.run(DBOS.get_workflow_status_async(f"{prefix}missing")) is None
    # A workflow that does not exist yet is waited for, as in DBOS.
    later = f"{prefix}later"
    timer = threading.Timer(
        0.5,
        lambda: client.enqueue({"workflow_name": "managed", "workflow_id": later}, 4),
    )
    timer.start()
    try:
        assert DBOS.get_result(later) == 12
    finally:
        timer.join()
    with pytest.raises(DBOSException, match="sharded"):
        DBOS.get_workflow_status(later, shard_key="s")


def test_wait_first_returns_the_workflow_that_finished(client: DBOSClient, prefix: str) -> None:
    waiting = client.enqueue({"workflow_name": "waits_for_go", "workflow_id": f"{prefix}w"})
    quick = client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}q"}, 1)
    first = client.wait_first([waiting, quick], polling_interval_sec=0.05)
    assert first is quick and first.get_result(timeout=5) == 3
    assert status_of(waiting.workflow_id) in ("ENQUEUED", "PENDING")
    with SetWorkflowID(f"{prefix}q2"):
        again = DBOS.start_workflow(managed, 2)
    async_handles = [
        asyncio.run(DBOS.retrieve_workflow_async(waiting.workflow_id)),
        asyncio.run(client.retrieve_workflow_async(again.workflow_id)),
    ]
    assert (
        asyncio.run(DBOS.wait_first_async(async_handles, polling_interval_sec=0.05))
        is (async_handles[1])
    )
    with pytest.raises(ValueError, match="empty"):
        DBOS.wait_first([])
    with pytest.raises(ValueError, match="duplicate"):
        DBOS.wait_first([quick, quick])
    client.cancel_workflow(waiting.workflow_id)


def test_retrieve_workflow_async_and_asyncio_wait(client: DBOSClient, prefix: str) -> None:
    with pytest.raises(DBOSNonExistentWorkflowError):
        asyncio.run(client.retrieve_workflow_async(f"{prefix}missing"))
    unwritten = asyncio.run(DBOS.retrieve_workflow_async(f"{prefix}x", existing_workflow=False))
    assert unwritten.workflow_id == f"{prefix}x"

    async def race() -> tuple[int, int]:
        async def soon() -> int:
            return 1

        done, pending = await DBOS.asyncio_wait(
            [soon(), asyncio.sleep(30)], return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        return len(done), len(pending)

    assert asyncio.run(race()) == (1, 1)


# -- managing -------------------------------------------------------------------------


def test_cancel_workflows_with_their_children(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "parent_of_waiter", "workflow_id": parent}, child)
    wait_until(lambda: status_of(child) == "PENDING", 30, "the child waiting")
    lone = client.enqueue({"workflow_name": "waits_for_go", "workflow_id": f"{prefix}lone"})
    client.cancel_workflows([parent, lone.workflow_id], cancel_children=True)
    assert [status_of(w) for w in (parent, child, lone.workflow_id)] == ["CANCELLED"] * 3
    with pytest.raises(DBOSNonExistentWorkflowError):
        DBOS.cancel_workflows([f"{prefix}missing"])


def test_delete_workflows_with_and_without_children(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "parent_of_waiter", "workflow_id": parent}, child)
    wait_until(lambda: status_of(child) == "PENDING", 30, "the child waiting")
    client.send(child, "go", "go")
    assert client.retrieve_workflow(parent).get_result(timeout=30) == "go"
    solo = client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}solo"}, 1)
    assert solo.get_result(timeout=30) == 3
    assert client.list_workflow_steps(solo.workflow_id) != []

    client.delete_workflow(solo.workflow_id)
    assert status_of(solo.workflow_id) is None
    assert client.list_workflow_steps(solo.workflow_id) == []
    assert client.get_all_events(solo.workflow_id) == {}

    DBOS.delete_workflow(parent)  # its child stays
    assert status_of(parent) is None and status_of(child) == "SUCCESS"

    client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}other"}, 1).get_result(
        timeout=30
    )
    asyncio.run(
        DBOS.delete_workflows_async([child, f"{prefix}other", f"{prefix}missing"])
    )  # a missing id is skipped
    assert client.list_workflows(workflow_id_prefix=prefix) == []


def test_delete_children_recursively(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "parent_of_waiter", "workflow_id": parent}, child)
    wait_until(lambda: status_of(child) == "PENDING", 30, "the child waiting")
    client.cancel_workflows([parent], cancel_children=True)
    client.delete_workflows([parent], delete_children=True)
    assert status_of(parent) is None and status_of(child) is None


def test_update_workflow_attributes_and_find_by_them(client: DBOSClient, prefix: str) -> None:
    first = client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}1"}, 1)
    second = client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}2"}, 2)
    first.get_result(timeout=30), second.get_result(timeout=30)
    assert first.get_status().attributes is None
    DBOS.update_workflow_attributes(first.workflow_id, {"tenant": "acme", "tier": 1})
    client.update_workflow_attributes(second.workflow_id, {"tenant": "acme"})
    client.update_workflow_attributes(second.workflow_id, {"tier": 2}, merge=True)
    assert second.get_status().attributes == {"tenant": "acme", "tier": 2}

    def found(attributes: dict[str, Any]) -> list[str]:
        listed = client.list_workflows(attributes=attributes, workflow_id_prefix=prefix)
        return [w.workflow_id for w in listed]

    assert found({"tenant": "acme"}) == [first.workflow_id, second.workflow_id]
    assert found({"tenant": "acme", "tier": 2}) == [second.workflow_id]
    assert found({"tenant": "other"}) == []
    DBOS.update_workflow_attributes(first.workflow_id, None)
    assert first.get_status().attributes is None
    assert found({"tenant": "acme"}) == [second.workflow_id]
    with pytest.raises(DBOSException, match="merge None"):
        DBOS.update_workflow_attributes(first.workflow_id, None, merge=True)
    with pytest.raises(DBOSNonExistentWorkflowError):
        DBOS.update_workflow_attributes(f"{prefix}missing", {"a": 1})


def test_set_workflow_delay(client: DBOSClient, prefix: str) -> None:
    delayed = client.enqueue(
        {"workflow_name": "managed", "workflow_id": f"{prefix}d", "delay_seconds": 3600}, 1
    )
    before = delayed.get_status().delay_until_epoch_ms
    assert before is not None
    until = int(time.time() * 1000) + 7_200_000
    client.set_workflow_delay(delayed.workflow_id, delay_until_epoch_ms=until)
    assert delayed.get_status().delay_until_epoch_ms == until
    DBOS.set_workflow_delay(delayed.workflow_id, delay_seconds=60)
    moved = delayed.get_status().delay_until_epoch_ms
    assert moved is not None and moved < before
    with pytest.raises(DBOSException, match="not both"):
        DBOS.set_workflow_delay(delayed.workflow_id, delay_seconds=1, delay_until_epoch_ms=1)
    with pytest.raises(DBOSException, match="Must specify"):
        DBOS.set_workflow_delay(delayed.workflow_id)
    client.cancel_workflow(delayed.workflow_id)
    # Only a DELAYED workflow's start moves.
    DBOS.set_workflow_delay(delayed.workflow_id, delay_seconds=5)
    assert delayed.get_status().status == "CANCELLED"
