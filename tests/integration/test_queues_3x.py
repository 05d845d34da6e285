"""DBOS 3.x queues: registered at run time, read and changed by name, enqueued to by
name, partitioned, prioritized on every queue — and served by workers that started
before the queue existed.

The first tests run in this process (the embedded worker of tests/conftest.py); the
last ones run real ``celery worker`` subprocesses (tests.integration.fault_app).
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import (
    DBOS,
    DBOSClient,
    EnqueueOptions,
    Queue,
    SetEnqueueOptions,
    SetWorkflowAttributes,
    SetWorkflowID,
)
from celery_durable.error import (
    DBOSException,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowIDInUseError,
)
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.subprocesses import CELERY, spawn
from tests.integration.test_faults import REDIS_URL, Faults, _faults, fault_database, wait_until
from tests.integration.test_operations import _is_pending, _max_overlap, _spans

__all__ = ["fault_database"]  # a fixture used below


def _name() -> str:
    return f"q3-{uuid.uuid4().hex[:8]}"


@DBOS.workflow()
def doubled(value: int) -> int:
    return value * 2


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


@pytest.fixture
def registered(worker: Any) -> Iterator[list[str]]:
    """Names of queues a test registers (deleted afterwards)."""
    names: list[str] = []
    yield names
    for name in names:
        DBOS.delete_queue(name)


def _register(registered: list[str], **limits: Any) -> Queue:
    name = _name()
    registered.append(name)
    return DBOS.register_queue(name, **limits)


# -- registering, reading, changing, deleting ---------------------------------------------


def test_a_registered_queue_is_stored_listed_and_deleted(registered: list[str]) -> None:
    queue = _register(
        registered,
        global_concurrency=4,
        worker_concurrency=2,
        limiter={"limit": 5, "period": 2.5},
        partition_concurrency=2,
        partition_worker_concurrency=1,
        partition_limiter={"limit": 3, "period": 1.0},
        polling_interval_sec=0.5,
    )
    assert queue.database_backed_queue
    found = DBOS.retrieve_queue(queue.name)
    assert found is not None
    assert (found.global_concurrency, found.concurrency, found.worker_concurrency) == (4, 4, 2)
    assert found.limiter == {"limit": 5, "period": 2.5}
    assert (found.partition_concurrency, found.partition_worker_concurrency) == (2, 1)
    assert found.partition_limiter == {"limit": 3, "period": 1.0}
    assert found.polling_interval_sec == 0.5
    assert queue.name in [q.name for q in DBOS.list_queues()]
    DBOS.delete_queue(queue.name)
    assert DBOS.retrieve_queue(queue.name) is None
    assert queue.name not in [q.name for q in DBOS.list_queues()]


def test_on_conflict_decides_whether_a_second_registration_updates(
    registered: list[str],
) -> None:
    queue = _register(registered, global_concurrency=2)
    DBOS.register_queue(queue.name, global_concurrency=3, on_conflict="never_update")
    assert queue.global_concurrency == 2
    DBOS.register_queue(queue.name, global_concurrency=3, on_conflict="always_update")
    assert queue.global_concurrency == 3
    # Registered by this very version: the default updates.
    DBOS.register_queue(queue.name, global_concurrency=4)
    assert queue.global_concurrency == 4
    with pytest.raises(DBOSException, match="on_conflict"):
        DBOS.register_queue(queue.name, on_conflict="sometimes")  # type: ignore[arg-type]


def test_the_default_on_conflict_leaves_a_running_newer_versions_queue_alone(
    registered: list[str],
) -> None:
    queue = _register(registered, global_concurrency=2)
    executor = f"other-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        # Another version registered it, and a worker of that version runs.
        db.execute(
            "UPDATE celery_durable.queues SET application_version = 'other' WHERE name = %s",
            (queue.name,),
        )
        db.execute(
            "INSERT INTO celery_durable.worker_versions VALUES (%s, 'other', 0)", (executor,)
        )
        try:
            DBOS.register_queue(queue.name, global_concurrency=5)
            assert queue.global_concurrency == 2
        finally:
            db.execute(
                "DELETE FROM celery_durable.worker_versions WHERE executor_id = %s", (executor,)
            )
    # No worker runs that version any more: this one's registration wins.
    DBOS.register_queue(queue.name, global_concurrency=5)
    assert queue.global_concurrency == 5


def test_setters_change_the_row_every_queue_object_reads(registered: list[str]) -> None:
    queue = _register(registered, global_concurrency=4)
    other = DBOS.retrieve_queue(queue.name)
    assert other is not None
    queue.set_global_concurrency(6)
    queue.set_worker_concurrency(3)
    queue.set_limiter({"limit": 2, "period": 0.5})
    queue.set_partition_concurrency(2)
    queue.set_partition_worker_concurrency(1)
    queue.set_partition_limiter({"limit": 1, "period": 3.0})
    queue.set_polling_interval_sec(2.0)
    assert other.global_concurrency == 6 and other.concurrency == 6
    assert other.worker_concurrency == 3
    assert other.limiter == {"limit": 2, "period": 0.5}
    assert (other.partition_concurrency, other.partition_worker_concurrency) == (2, 1)
    assert other.partition_limiter == {"limit": 1, "period": 3.0}
    assert other.polling_interval_sec == 2.0
    queue.set_limiter(None)
    queue.set_concurrency(None)
    assert other.limiter is None and other.global_concurrency is None
    # Limits that contradict the stored ones are refused, as in DBOS.
    with pytest.raises(ValueError, match="partition_worker_concurrency"):
        queue.set_partition_worker_concurrency(3)  # above partition_concurrency (2)
    with pytest.raises(ValueError, match="polling_interval_sec"):
        queue.set_polling_interval_sec(0)


def test_async_twins_register_read_change_and_delete(worker: Any) -> None:
    name = _name()

    async def scenario() -> tuple[Any, ...]:
        queue = await DBOS.register_queue_async(name, global_concurrency=2)
        await queue.set_global_concurrency_async(5)
        found = await DBOS.retrieve_queue_async(name)
        assert found is not None
        listed = [q.name for q in await DBOS.list_queues_async()]
        concurrency = await found.get_global_concurrency_async()
        await DBOS.delete_queue_async(name)
        return concurrency, name in listed, await DBOS.retrieve_queue_async(name)

    assert asyncio.run(scenario()) == (5, True, None)


def test_the_sync_queue_calls_refuse_a_running_event_loop(worker: Any) -> None:
    # As DBOS 3.4: they would block the loop on a database round trip.
    name = _name()

    async def scenario() -> list[str]:
        refused = []
        for call in (
            lambda: DBOS.register_queue(name),
            lambda: DBOS.retrieve_queue(name),
            lambda: DBOS.delete_queue(name),
            lambda: DBOS.list_queues(),
        ):
            with pytest.raises(RuntimeError, match="while an event loop is running") as caught:
                call()
            refused.append(str(caught.value).split("(")[0])
        return refused

    refused = asyncio.run(scenario())
    assert refused == ["register_queue", "retrieve_queue", "delete_queue", "list_queues"]
    assert DBOS.retrieve_queue(name) is None  # nothing was registered


def test_list_queues_lists_the_registered_queues_only(registered: list[str]) -> None:
    declared = Queue(_name(), 2)
    DBOS._service().runtime.process.store.workers.register(
        workflow_names=[], queues=[declared.limits], executor_id="tests"
    )
    queue = _register(registered)
    listed = [q.name for q in DBOS.list_queues()]
    assert queue.name in listed and declared.name not in listed
    found = DBOS.retrieve_queue(declared.name)
    assert found is not None and found.concurrency == 2


def test_a_queue_declared_in_code_is_constructed_directly_and_refuses_setters() -> None:
    # The specification wins over DBOS 3.x: Queue(...) does not raise.
    queue = Queue(_name(), 3, worker_concurrency=2)
    assert not queue.database_backed_queue
    assert (queue.concurrency, queue.global_concurrency, queue.worker_concurrency) == (3, 3, 2)
    with pytest.raises(DBOSException, match="only supported for queues registered"):
        queue.set_global_concurrency(4)


def test_queue_limits_are_checked_as_dbos_checks_them(worker: Any) -> None:
    with pytest.raises(ValueError, match="reserved"):
        DBOS.register_queue("_dbos_mine")
    with pytest.raises(ValueError, match="set only one"):
        DBOS.register_queue(_name(), concurrency=2, global_concurrency=2)
    with pytest.raises(ValueError, match="concurrency must be greater than or equal"):
        DBOS.register_queue(_name(), global_concurrency=1, worker_concurrency=2)
    with pytest.raises(ValueError, match="partition_limiter must specify"):
        DBOS.register_queue(_name(), partition_limiter={"limit": 1})  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="at least 1"):
        DBOS.register_queue(_name(), partition_concurrency=0)
    with pytest.raises(DBOSException, match="application_name"):
        DBOS.list_queues(application_name="other")


@DBOS.workflow()
def on_schedule(scheduled_time: Any, context: Any) -> None:
    return None


def test_a_schedule_may_name_a_registered_queue(registered: list[str]) -> None:
    queue = _register(registered)
    name = f"on-{queue.name}"
    DBOS.create_schedule(
        schedule_name=name, workflow_fn=on_schedule, schedule="0 0 1 1 *", queue_name=queue.name
    )
    DBOS.delete_schedule(name)


# -- enqueueing -----------------------------------------------------------------------------


def test_a_registered_queue_is_served_by_the_worker_already_running(
    registered: list[str],
) -> None:
    queue = _register(registered, global_concurrency=2)
    assert DBOS.enqueue_workflow(queue.name, doubled, 21).get_result(timeout=60) == 42
    handle = queue.enqueue(doubled, 5)
    assert handle.get_result(timeout=60) == 10
    assert handle.get_status().queue_name == queue.name


def test_a_workflow_enqueued_before_its_queue_is_registered_runs_once_it_is(
    registered: list[str],
) -> None:
    name = _name()
    handle = DBOS.enqueue_workflow(name, doubled, 7)
    time.sleep(1.0)
    assert handle.get_status().status == "ENQUEUED"  # no worker consumes the queue yet
    registered.append(name)
    DBOS.register_queue(name)
    assert handle.get_result(timeout=60) == 14


def test_enqueue_workflow_with_options_honours_the_options(registered: list[str]) -> None:
    queue = _register(registered)
    options: EnqueueOptions = {
        "workflow_name": doubled.__qualname__,
        "queue_name": queue.name,
        "workflow_id": f"opts-{uuid.uuid4().hex}",
        "priority": 7,
        "workflow_id_reuse_policy": "reject",
    }
    handle = DBOS.enqueue_workflow_with_options(options, 4)
    assert handle.get_result(timeout=60) == 8
    assert handle.workflow_id == options["workflow_id"]
    with pytest.raises(DBOSWorkflowIDInUseError):
        DBOS.enqueue_workflow_with_options(options, 4)
    again = asyncio.run(
        DBOS.enqueue_workflow_with_options_async(
            {**options, "workflow_id_reuse_policy": "return-existing"}, 4
        )  # type: ignore[typeddict-item]
    )
    assert again.workflow_id == options["workflow_id"]


def test_enqueue_with_options_takes_names_this_process_lacks_and_ambient_options(
    registered: list[str],
) -> None:
    queue = _register(registered)
    elsewhere = DBOS.enqueue_workflow_with_options(
        {"workflow_name": "implemented_elsewhere", "queue_name": queue.name, "delay_seconds": 3600}
    )
    assert elsewhere.get_status().status == "DELAYED"
    DBOS.cancel_workflow(elsewhere.workflow_id)
    workflow_id = f"ambient-{uuid.uuid4().hex}"
    with SetWorkflowID(workflow_id), SetEnqueueOptions(priority=3, deduplication_id="amb"):
        handle = DBOS.enqueue_workflow_with_options(
            {"workflow_name": doubled.__qualname__, "queue_name": queue.name}, 2
        )
    assert handle.workflow_id == workflow_id
    assert handle.get_result(timeout=60) == 4
    status = handle.get_status()
    assert (status.priority, status.deduplication_id) == (3, "amb")


def test_enqueue_options_attributes_merge_over_the_ambient_ones(
    registered: list[str], client: DBOSClient
) -> None:
    queue = _register(registered)
    options: EnqueueOptions = {
        "workflow_name": doubled.__qualname__,
        "queue_name": queue.name,
        "attributes": {"explicit": "b", "both": "options"},
    }
    with SetWorkflowAttributes({"ambient": "a", "both": "block"}):
        handle = DBOS.enqueue_workflow_with_options(options, 1)
    assert handle.get_result(timeout=60) == 2
    assert handle.get_status().attributes == {"ambient": "a", "explicit": "b", "both": "options"}
    by_client = client.enqueue(options, 2)
    assert by_client.get_result(timeout=60) == 4
    assert by_client.get_status().attributes == {"explicit": "b", "both": "options"}
    for bad in ("x", {"not json": object()}):
        with pytest.raises(DBOSException, match="Invalid workflow attributes"):
            DBOS.enqueue_workflow_with_options({**options, "attributes": bad}, 3)  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    "field",
    [
        "serialization_type",
        "class_name",
        "instance_name",
        "application_name",
        "shard_key",
    ],
)
def test_enqueue_options_that_cannot_be_honoured_raise(worker: Any, field: str) -> None:
    options: dict[str, Any] = {"workflow_name": "doubled", "queue_name": TEST_QUEUE, field: "x"}
    with pytest.raises(DBOSException, match=field):
        DBOS.enqueue_workflow_with_options(options, 1)  # type: ignore[arg-type]


def test_deduplication_can_return_the_existing_workflow(client: DBOSClient) -> None:
    # A Celery queue no worker consumes: the first workflow stays ENQUEUED.
    options: EnqueueOptions = {
        "workflow_name": doubled.__qualname__,
        "queue_name": f"unconsumed-{uuid.uuid4().hex[:8]}",
        "deduplication_id": "once",
    }
    first = client.enqueue(options, 1)
    try:
        with pytest.raises(DBOSQueueDeduplicatedError):
            client.enqueue(options, 2)
        second = client.enqueue({**options, "duplication_policy": "return-existing"}, 2)
        assert second.workflow_id == first.workflow_id
    finally:
        DBOS.cancel_workflow(first.workflow_id)


def test_a_client_bound_queue_changes_limits_but_does_not_enqueue(client: DBOSClient) -> None:
    queue = client.register_queue(_name(), global_concurrency=2)
    try:
        queue.set_global_concurrency(3)
        found = DBOS.retrieve_queue(queue.name)
        assert found is not None and found.global_concurrency == 3
        assert [q.name for q in client.list_queues() if q.name == queue.name] == [queue.name]
        with pytest.raises(DBOSException, match=r"Use DBOSClient\.enqueue"):
            queue.enqueue(doubled, 1)
        with pytest.raises(DBOSException, match="no application version"):
            client.register_queue(queue.name, on_conflict="update_if_latest_version")
        client.register_queue(queue.name, global_concurrency=9)  # always_update
        assert queue.global_concurrency == 9
    finally:
        client.delete_queue(queue.name)
    assert client.retrieve_queue(queue.name) is None


@pytest.mark.parametrize(
    "option",
    [
        {"deduplication_id": "no-queue"},
        {"priority": 5},
        {"queue_partition_key": "no-queue"},
        {"delay_seconds": 30.0},
    ],
)
def test_queue_only_options_refuse_a_start_without_a_queue(
    worker: Any, option: dict[str, Any]
) -> None:
    # As DBOS 3.4: they would do nothing, and a deduplication id would be a trap.
    workflow_id = f"no-queue-{uuid.uuid4().hex}"
    with (
        SetEnqueueOptions(**option),
        SetWorkflowID(workflow_id),
        pytest.raises(DBOSException, match=f"{next(iter(option))} set on a workflow that is not"),
    ):
        DBOS.start_workflow(doubled, 1)

    async def start_async() -> None:
        with SetEnqueueOptions(**option), SetWorkflowID(workflow_id):
            await DBOS.start_workflow_async(doubled, 1)

    with pytest.raises(DBOSException, match="not being enqueued"):
        asyncio.run(start_async())
    assert DBOS.get_workflow_status(workflow_id) is None  # nothing was written
    # app_version still applies without a queue: it decides who runs the workflow.
    with SetEnqueueOptions(app_version=DBOS.application_version):
        assert DBOS.start_workflow(doubled, 2).get_result(timeout=30) == 4


def test_a_worker_concurrency_of_zero_pauses_the_queue_until_raised(
    registered: list[str],
) -> None:
    # DBOS accepts 0 (its pause idiom); a negative limit is still refused.
    queue = _register(registered, worker_concurrency=0)
    handle = DBOS.enqueue_workflow(queue.name, doubled, 5)
    time.sleep(2)
    assert handle.get_status().status == "ENQUEUED"
    queue.set_worker_concurrency(1)
    assert handle.get_result(timeout=60) == 10
    queue.set_worker_concurrency(None)
    queue.set_global_concurrency(0)  # the queue-wide pause
    paused = DBOS.enqueue_workflow(queue.name, doubled, 6)
    time.sleep(2)
    assert paused.get_status().status == "ENQUEUED"
    queue.set_global_concurrency(None)
    assert paused.get_result(timeout=60) == 12
    with pytest.raises(DBOSException, match="worker_concurrency must be an integer >= 0"):
        DBOS.register_queue(_name(), worker_concurrency=-1)


def test_a_workflows_partition_key_is_in_its_status_and_listings(registered: list[str]) -> None:
    queue = _register(registered, partition_concurrency=1)
    with SetEnqueueOptions(queue_partition_key="customer-7"):
        handle = DBOS.enqueue_workflow(queue.name, doubled, 3)
    assert handle.get_result(timeout=60) == 6
    assert handle.get_status().queue_partition_key == "customer-7"
    (listed,) = DBOS.list_workflows(workflow_ids=[handle.workflow_id], load_input=False)
    assert listed.queue_partition_key == "customer-7"


def test_an_invalid_priority_is_refused_with_dbos_message(worker: Any) -> None:
    with (
        pytest.raises(DBOSException, match="Invalid priority -100"),
        SetEnqueueOptions(priority=-100),
    ):
        DBOS.enqueue_workflow(TEST_QUEUE, doubled, 1)


def test_a_partition_key_with_a_deduplication_id_is_refused(worker: Any) -> None:
    with (
        SetEnqueueOptions(deduplication_id="d", queue_partition_key="p"),
        pytest.raises(DBOSException, match="Deduplication is not supported for partitioned"),
    ):
        DBOS.enqueue_workflow(TEST_QUEUE, doubled, 1)


# -- real worker processes --------------------------------------------------------------------


@pytest.fixture
def fleet(fault_database: str, tmp_path: Path) -> Iterator[Faults]:
    yield from _faults(REDIS_URL, tmp_path)


def _ready(faults: Faults, count: int = 1) -> bool:
    return faults.worker_log().count(" ready.") >= count


def _enqueue(faults: Faults, queue: str, *args: Any, **options: Any) -> Any:
    return faults.client.enqueue(
        {"workflow_name": "occupy", "queue_name": queue, "allow_unregistered": True, **options},
        *args,
    )


def test_a_queue_registered_after_the_worker_started_is_served(fleet: Faults) -> None:
    fleet.start_worker()
    wait_until(functools.partial(_ready, fleet), 60, "the worker")
    queue = fleet.client.register_queue(_name(), global_concurrency=2)
    handle = _enqueue(fleet, queue.name, 0.0)
    assert handle.get_result(timeout=60) == handle.workflow_id


def test_a_worker_started_after_the_queue_was_registered_serves_it(fleet: Faults) -> None:
    queue = fleet.client.register_queue(_name())
    handle = _enqueue(fleet, queue.name, 0.0)
    fleet.start_worker()
    assert handle.get_result(timeout=60) == handle.workflow_id


def test_a_dedicated_worker_does_not_consume_registered_queues(
    fleet: Faults, tmp_path: Path
) -> None:
    # -Q naming another queue only: the worker is dedicated to it.
    dedicated = f"dedicated-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "dedicated.log"
    command = [
        *CELERY,
        *("-A", "tests.integration.fault_app", "worker", "--loglevel=INFO", "--pool=threads"),
        *("--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        *(f"--hostname={dedicated}@%h", "-Q", dedicated),
    ]
    worker = spawn(command, fleet.env, log)
    try:
        wait_until(lambda: log.exists() and " ready." in log.read_text(), 60, "the worker")
        queue = fleet.client.register_queue(_name())
        ignored = _enqueue(fleet, queue.name, 0.0)
        with pytest.raises(TimeoutError):  # longer than a sweep (10 s)
            ignored.get_result(timeout=12)
        served = _enqueue(fleet, dedicated, 0.0)
        assert served.get_result(timeout=60) == served.workflow_id
    finally:
        worker.stop()


def _admitted_in_priority_order(faults: Faults, queue: str) -> bool:
    blocker = _enqueue(faults, queue, 1.5)
    wait_until(functools.partial(_is_pending, blocker), 60, "the blocker to be admitted")
    handles = {p: _enqueue(faults, queue, 0.0, priority=p) for p in [5, 1, 4, 2, 3]}
    for handle in handles.values():
        handle.get_result(timeout=90)
    started = {p: h.get_status().started_at_epoch_ms for p, h in handles.items()}
    return sorted(started, key=lambda p: started[p] or 0) == [1, 2, 3, 4, 5]


def test_priority_is_honoured_under_a_worker_concurrency_limit(fleet: Faults) -> None:
    queue = fleet.client.register_queue(_name(), worker_concurrency=1)
    fleet.start_worker(concurrency=2)
    assert _admitted_in_priority_order(fleet, queue.name)


def test_priority_is_honoured_on_a_declared_queue_without_priority_enabled(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _faults(REDIS_URL, tmp_path):
        faults.env["CD_FAULT_QUEUE_LIMITS"] = '{"concurrency": 1}'
        faults.start_worker(concurrency=2)
        assert _admitted_in_priority_order(faults, faults.queue)


def test_partition_concurrency_holds_per_partition_not_across_them(fleet: Faults) -> None:
    queue = fleet.client.register_queue(_name(), partition_concurrency=1)
    fleet.start_worker(concurrency=4)
    wait_until(functools.partial(_ready, fleet), 60, "the worker")
    handles = {
        key: [_enqueue(fleet, queue.name, 0.5, queue_partition_key=key) for _ in range(3)]
        for key in ("a", "b")
    }
    spans = {
        key: _spans(fleet, [h.get_result(timeout=90) for h in partition])
        for key, partition in handles.items()
    }
    assert _max_overlap(spans["a"]) == 1
    assert _max_overlap(spans["b"]) == 1
    assert _max_overlap(spans["a"] + spans["b"]) == 2
