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

from celery_durable import DBOS, DBOSClient, SetWorkflowAttributes, SetWorkflowID
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


# -- resume, cancel, fork (DBOS 3.4's options) -----------------------------------------

failures = {"count": 0}


@DBOS.workflow()
def fails_in_its_code() -> None:
    failures["count"] += 1
    raise ValueError("workflow code failed")


def test_resume_leaves_a_failed_workflow_alone_as_dbos_does(
    client: DBOSClient, prefix: str
) -> None:
    failed = client.enqueue({"workflow_name": "fails_in_its_code", "workflow_id": f"{prefix}f"})
    with pytest.raises(ValueError):
        failed.get_result(timeout=30)
    runs = failures["count"]
    assert DBOS.resume_workflow(failed.workflow_id).get_status().status == "ERROR"
    assert client.resume_workflows([failed.workflow_id])[0].get_status().status == "ERROR"
    assert failures["count"] == runs
    # celery_durable's own override (the CLI's --force, the dashboard's confirmed resume).
    again = client.resume_failed_workflow(failed.workflow_id)
    with pytest.raises(ValueError):
        again.get_result(timeout=30)
    assert failures["count"] == runs + 1


def test_resume_onto_a_queue_and_every_id_checked_first(client: DBOSClient, prefix: str) -> None:
    waiting = client.enqueue({"workflow_name": "waits_for_go", "workflow_id": f"{prefix}w"})
    asyncio.run(DBOS.cancel_workflow_async(waiting.workflow_id))
    with pytest.raises(DBOSNonExistentWorkflowError):
        client.resume_workflows([waiting.workflow_id, f"{prefix}missing"])
    assert status_of(waiting.workflow_id) == "CANCELLED"  # nothing resumed
    parked = f"{prefix}nobody-consumes"
    resumed = asyncio.run(client.resume_workflow_async(waiting.workflow_id, queue_name=parked))
    status = DBOS.get_workflow_status(resumed.workflow_id)
    assert status is not None and status.status == "ENQUEUED" and status.queue_name == parked
    client.cancel_workflow(waiting.workflow_id)


def test_cancel_workflow_with_its_children(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "parent_of_waiter", "workflow_id": parent}, child)
    wait_until(lambda: status_of(child) == "PENDING", 30, "the child waiting")
    client.cancel_workflow(parent, cancel_children=True)
    assert status_of(parent) == status_of(child) == "CANCELLED"


def test_fork_onto_a_queue_with_a_timeout_and_the_attributes(
    client: DBOSClient, prefix: str
) -> None:
    original = client.enqueue({"workflow_name": "managed", "workflow_id": f"{prefix}o"}, 1)
    original.get_result(timeout=30)
    DBOS.update_workflow_attributes(original.workflow_id, {"tenant": "acme"})
    parked = f"{prefix}nobody-consumes"
    with SetWorkflowID(f"{prefix}fork"):
        fork = DBOS.fork_workflow(original.workflow_id, 1, queue_name=parked, timeout_seconds=300)
    status = fork.get_status()
    assert status.queue_name == parked and status.workflow_timeout_ms == 300_000
    assert status.attributes == {"tenant": "acme"} and status.forked_from == original.workflow_id
    client.cancel_workflow(fork.workflow_id)
    with pytest.raises(DBOSException, match="queue_partition_key"):
        client.fork_workflow(original.workflow_id, 1, queue_partition_key="p")
    with pytest.raises(DBOSException, match="Timeouts must be positive"):
        DBOS.fork_workflow(original.workflow_id, 1, timeout_seconds=0)
    forked = asyncio.run(client.fork_workflow_async(original.workflow_id, 2))
    assert asyncio.run(forked.get_result(timeout=30)) == 3


def test_fork_with_replacement_children(client: DBOSClient, prefix: str) -> None:
    parent, child = f"{prefix}parent", f"{prefix}child"
    client.enqueue({"workflow_name": "parent_of_waiter", "workflow_id": parent}, child)
    wait_until(lambda: status_of(child) == "PENDING", 30, "the child waiting")
    client.send(child, "original", "go")
    assert client.retrieve_workflow(parent).get_result(timeout=30) == "original"
    replacement = client.enqueue({"workflow_name": "waits_for_go", "workflow_id": f"{prefix}r"})
    client.send(replacement.workflow_id, "replacement", "go")
    assert replacement.get_result(timeout=30) == "replacement"
    (started,) = [s for s in client.list_workflow_steps(parent) if s["child_workflow_id"]][:1]
    # Copy the child's start, re-run what follows: it awaits the replacement instead.
    fork = asyncio.run(
        DBOS.fork_workflow_async(
            parent,
            started["function_id"] + 1,
            replacement_children={child: replacement.workflow_id},
        )
    )
    assert asyncio.run(fork.get_result(timeout=30)) == "replacement"
    copied = client.list_workflow_steps(fork.workflow_id)[0]
    assert copied["child_workflow_id"] == replacement.workflow_id


# -- rewind ---------------------------------------------------------------------------

rewound_calls: dict[str, int] = {}


@DBOS.step()
def counted(name: str) -> str:
    rewound_calls[name] = rewound_calls.get(name, 0) + 1
    return name


@DBOS.workflow()
def two_phases(tag: str) -> list[str]:
    first = counted(f"{tag}-a")
    DBOS.set_event("phase", "a")
    second = counted(f"{tag}-b")
    DBOS.set_event("phase", "b")
    return [first, second]


def test_rewind_a_finished_workflow_to_a_step(client: DBOSClient, prefix: str) -> None:
    with SetWorkflowID(f"{prefix}r"):
        handle = DBOS.start_workflow(two_phases, prefix)
    assert handle.get_result(timeout=30) == [f"{prefix}-a", f"{prefix}-b"]
    assert [s["function_id"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [1, 2, 3, 4]
    # Onto a queue nobody consumes: what the rewind left is there to see.
    parked = f"{prefix}nobody-consumes"
    rewound = DBOS.rewind_workflow(handle.workflow_id, start_step=3, queue_name=parked)
    status = rewound.get_status()
    assert status.status == "ENQUEUED" and status.output is None and status.queue_name == parked
    assert [s["function_id"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [1, 2]
    assert DBOS.get_all_events(handle.workflow_id) == {"phase": "a"}
    with pytest.raises(DBOSException, match="terminal state"):
        DBOS.rewind_workflow(handle.workflow_id)
    client.cancel_workflow(handle.workflow_id)
    again = asyncio.run(
        client.rewind_workflow_async(handle.workflow_id, start_step=3, queue_name=TEST_QUEUE)
    )
    assert asyncio.run(again.get_result(timeout=30)) == [f"{prefix}-a", f"{prefix}-b"]
    assert rewound_calls == {f"{prefix}-a": 1, f"{prefix}-b": 2}
    assert DBOS.get_event(handle.workflow_id, "phase", timeout_seconds=0) == "b"
    with pytest.raises(ValueError, match="start_step"):
        client.rewind_workflow(handle.workflow_id, start_step=0)
    with pytest.raises(DBOSNonExistentWorkflowError):
        DBOS.rewind_workflow(f"{prefix}missing")


# -- application versions ---------------------------------------------------------------


def test_application_versions(client: DBOSClient, prefix: str) -> None:
    ours = DBOS.application_version
    assert ours in [v["version_name"] for v in DBOS.list_application_versions()]
    # Another version, as a worker of it records at its start.
    DBOS._service().runtime.process.store.management.register_version(f"{prefix}v2")
    client.set_latest_application_version(f"{prefix}v2")
    latest = DBOS.get_latest_application_version()
    assert latest["version_name"] == f"{prefix}v2" and latest["application_name"] is None
    listed = asyncio.run(client.list_application_versions_async())
    assert listed[0] == latest and ours in [v["version_name"] for v in listed]
    asyncio.run(DBOS.set_latest_application_version_async(ours))
    assert client.get_latest_application_version()["version_name"] == ours
    assert asyncio.run(DBOS.get_latest_application_version_async())["version_name"] == ours
    with pytest.raises(DBOSException, match="application_name"):
        DBOS.set_latest_application_version(ours, application_name="other")


# -- SetWorkflowAttributes ----------------------------------------------------------------


def test_set_workflow_attributes_on_started_and_called_workflows(
    client: DBOSClient, prefix: str
) -> None:
    attributes = {"customer": "acme", "region": "eu"}
    with SetWorkflowAttributes(attributes):
        with SetWorkflowID(f"{prefix}started"):
            started = DBOS.start_workflow(managed, 1)
        with SetWorkflowID(f"{prefix}called"):
            assert managed(2) == 6
        with SetWorkflowID(f"{prefix}parent"):
            parent = DBOS.start_workflow(listed_parent_of_managed, f"{prefix}child")
    assert started.get_result(timeout=30) == 3 and parent.get_result(timeout=30) == 9
    assert started.get_status().attributes == attributes
    assert client.retrieve_workflow(f"{prefix}called").get_status().attributes == attributes
    assert parent.get_status().attributes == attributes
    # A child does not inherit them.
    assert client.retrieve_workflow(f"{prefix}child").get_status().attributes is None
    found = client.list_workflows(attributes={"customer": "acme"}, workflow_id_prefix=prefix)
    assert [w.workflow_id for w in found] == [
        f"{prefix}started",
        f"{prefix}called",
        parent.workflow_id,
    ]
    with SetWorkflowID(f"{prefix}outside"):
        assert DBOS.start_workflow(managed, 1).get_status().attributes is None
    with pytest.raises(DBOSException, match="must be a dict"):
        SetWorkflowAttributes(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(DBOSException, match="JSON-serializable"):
        SetWorkflowAttributes({"when": object()})


@DBOS.workflow()
def listed_parent_of_managed(child_id: str) -> int:
    with SetWorkflowID(child_id):
        return DBOS.start_workflow(managed, 3).get_result()


@DBOS.step()
def forks_in_a_step(workflow_id: str) -> str:
    return DBOS.fork_workflow(workflow_id, 1).workflow_id


@DBOS.step()
def forks_under_its_own_id(workflow_id: str, fork_id: str) -> str:
    with SetWorkflowID(fork_id):
        return DBOS.fork_workflow(workflow_id, 1).workflow_id


@DBOS.workflow()
def forks_then_starts(source_id: str, child_id: str, fork_id: str) -> list[str]:
    with SetWorkflowID(child_id):
        # The block names the next workflow this code starts, not the step's fork.
        forked = forks_in_a_step(source_id)
        started = DBOS.start_workflow(managed, 2).workflow_id
    return [forked, started, forks_under_its_own_id(source_id, fork_id)]


def test_a_fork_in_a_step_keeps_the_workflow_codes_set_workflow_id(prefix: str) -> None:
    source = f"{prefix}source"
    with SetWorkflowID(source):
        assert managed(1) == 3
    child, fork = f"{prefix}child", f"{prefix}fork"
    forked, started, named = forks_then_starts(source, child, fork)
    assert started == child and forked not in (child, fork) and named == fork
    assert DBOS.retrieve_workflow(forked).get_result(timeout=30) == 3
    assert DBOS.retrieve_workflow(fork).get_result(timeout=30) == 3


@DBOS.workflow()
def forks_and_waits(source_id: str) -> Any:
    return DBOS.fork_workflow(source_id, 1).get_result()


def test_a_workflow_awaiting_its_fork_under_celery_looks_again_soon(prefix: str) -> None:
    # A fork wakes nobody when it finishes (it is no one's child): the waiting workflow
    # looks again after half a second, then less often, not after child_poll_seconds.
    source = f"{prefix}source"
    with SetWorkflowID(source):
        assert managed(4) == 12
    started = time.monotonic()
    assert DBOS.start_workflow(forks_and_waits, source).get_result(timeout=20) == 12
    assert time.monotonic() - started < 10
