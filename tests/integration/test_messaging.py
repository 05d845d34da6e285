"""Messages, events and streams (DBOS's send/recv, set_event/get_event, write/read_stream).

Against real PostgreSQL and the session's Celery worker (Redis, a thread pool of two
slots). A workflow that waits in ``recv`` (or in ``get_event`` on another workflow)
under Celery holds no slot: its wait is a countdown of the whole timeout, so a workflow
that finishes long before its timeout was woken by the ``send``/``set_event``. Timeouts
here are generous (300 s waits, results within 60 s): nothing measures latency (that is
bench/'s job). Killed workers are in tests/integration/test_messaging_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import DBOS, DBOSClient, Queue, SetWorkflowID
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSSerializationError,
    DBOSStreamTimeoutError,
)
from celery_durable.integration.publishing import publish_workflow
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

# Long enough that a workflow finishing within RESULT_TIMEOUT was woken, not timed out.
LONG_WAIT = 300.0
RESULT_TIMEOUT = 60.0
STATE_TIMEOUT = 60.0

# A queue no worker consumes: its workflows stay ENQUEUED until a test runs them here.
UNCONSUMED = Queue("messaging-unconsumed")

# Workflow ids whose next execution raises SimulatedCrash (once).
crash: set[str] = set()
# Gates a workflow's step waits on (direct calls and the in-process worker share them).
gates: dict[str, threading.Event] = {}
# recv's timeout, changed by a test between two executions of one workflow.
recv_timeout: dict[str, float] = {}


class SimulatedCrash(BaseException):
    """An execution that dies here (its process would have): nothing is recorded."""


def crash_once() -> None:
    workflow_id = DBOS.workflow_id
    if workflow_id in crash:
        crash.discard(workflow_id)
        raise SimulatedCrash(workflow_id)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    crash.clear()
    for gate in gates.values():
        gate.set()
    gates.clear()
    recv_timeout.clear()


@pytest.fixture(scope="module")
def sql(dbos: type[DBOS]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        yield connection


@pytest.fixture
def client(worker: Any) -> Iterator[DBOSClient]:
    # What a worker does at start-up (the in-process test worker sends no worker_ready).
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    yield client
    client.destroy()


# -- helpers ---------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def status_row(sql: psycopg.Connection[Any], workflow_id: str) -> dict[str, Any]:
    cursor = sql.execute(
        "SELECT status, execution_active, wait_key, dispatch_generation "
        "FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    )
    row = cursor.fetchone()
    assert row is not None, workflow_id
    return dict(zip([c.name for c in cursor.description or []], row, strict=True))


def row_exists(sql: psycopg.Connection[Any], workflow_id: str) -> bool:
    return (
        sql.execute(
            "SELECT 1 FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
        is not None
    )


def waiting_for(sql: psycopg.Connection[Any], workflow_id: str, wait_key: str) -> bool:
    """Released by its worker (no slot held) until ``wait_key`` arrives or times out."""
    row = status_row(sql, workflow_id)
    return (
        row["status"] == "PENDING" and not row["execution_active"] and row["wait_key"] == wait_key
    )


def wait_for_wait(sql: psycopg.Connection[Any], workflow_id: str, wait_key: str) -> None:
    wait_until(
        lambda: waiting_for(sql, workflow_id, wait_key),
        STATE_TIMEOUT,
        f"{workflow_id} to wait for {wait_key}",
    )


def notifications(sql: psycopg.Connection[Any], workflow_id: str) -> list[tuple[Any, ...]]:
    """``(topic, message, consumed_by_function_id)`` of every message sent to it."""
    rows = sql.execute(
        "SELECT topic, message, consumed_by_function_id FROM celery_durable.notifications "
        "WHERE destination_uuid = %s ORDER BY message_id",
        (workflow_id,),
    ).fetchall()
    return [(topic, json.loads(message), consumed) for topic, message, consumed in rows]


def events_history(sql: psycopg.Connection[Any], workflow_id: str) -> list[tuple[Any, ...]]:
    rows = sql.execute(
        "SELECT function_id, key, value FROM celery_durable.workflow_events_history "
        "WHERE workflow_uuid = %s ORDER BY function_id, key",
        (workflow_id,),
    ).fetchall()
    return [(function_id, key, json.loads(value)) for function_id, key, value in rows]


def stream_rows(sql: psycopg.Connection[Any], workflow_id: str) -> list[tuple[Any, ...]]:
    rows = sql.execute(
        'SELECT key, "offset", function_id, value FROM celery_durable.streams '
        'WHERE workflow_uuid = %s ORDER BY key, "offset"',
        (workflow_id,),
    ).fetchall()
    return [
        (key, offset, function_id, json.loads(value)) for key, offset, function_id, value in rows
    ]


def steps(workflow_id: str) -> list[tuple[int, str]]:
    return [(s["function_id"], s["function_name"]) for s in DBOS.list_workflow_steps(workflow_id)]


def run_here(workflow_id: str) -> Any:
    """Executes an ENQUEUED workflow in this thread, as a Celery worker would."""
    result = (
        DBOS._service().runtime.process.engine().run(workflow_id, RunOptions(inline_retries=False))
    )
    assert result.outcome == "completed", result
    if result.error is not None:
        raise result.error
    return result.output


def in_thread(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Runs ``target(*args)`` in a thread; the dict gets its "result" or "error"."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target(*args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def call_as(workflow_id: str, workflow: Any, *args: Any) -> Any:
    with SetWorkflowID(workflow_id):
        return workflow(*args)


def joined(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    thread.join(timeout=RESULT_TIMEOUT)
    assert not thread.is_alive(), "the call did not return"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# -- workflows -------------------------------------------------------------------------


@DBOS.step()
def msg_echo(value: Any) -> Any:
    return value


@DBOS.step()
def msg_gate(name: str) -> str:
    gates.setdefault(name, threading.Event()).wait(timeout=STATE_TIMEOUT)
    return name


@DBOS.workflow()
def msg_receive(topic: str | None, count: int, timeout_seconds: float) -> list[Any]:
    return [DBOS.recv(topic, timeout_seconds=timeout_seconds) for _ in range(count)]


@DBOS.workflow()
def msg_receive_topics(plan: list[str | None]) -> list[Any]:
    return [DBOS.recv(topic, timeout_seconds=0) for topic in plan]


@DBOS.workflow()
def msg_gated_receive(gate: str, count: int) -> list[Any]:
    msg_gate(gate)
    return [DBOS.recv("late", timeout_seconds=RESULT_TIMEOUT) for _ in range(count)]


@DBOS.workflow()
def msg_receive_then_crash() -> Any:
    message = DBOS.recv("t", timeout_seconds=recv_timeout.get(DBOS.workflow_id or "", 1.0))
    crash_once()
    return message


@DBOS.workflow()
def msg_quick(n: int) -> int:
    return int(msg_echo(n))


@DBOS.workflow()
def msg_sends_to(destination: str, message: Any) -> str:
    try:
        DBOS.send(destination, message, "t")
        outcome = "sent"
    except DBOSNonExistentWorkflowError as error:
        outcome = str(error)
    crash_once()
    return outcome


@DBOS.workflow()
def msg_sends_bad(destination: str) -> str:
    try:
        DBOS.send(destination, object())
    except DBOSSerializationError:
        return "refused"
    return "sent"


@DBOS.step(retries_allowed=False)
def msg_recv_in_step() -> Any:
    return DBOS.recv("t", timeout_seconds=0)


@DBOS.workflow()
def msg_calls_recv_in_step() -> str:
    try:
        msg_recv_in_step()
    except DBOSException as error:
        return error.message
    return "received"


@DBOS.step()
def msg_set_event_in_step(key: str, value: Any) -> str:
    DBOS.set_event(key, value)
    return "set"


@DBOS.step()
def msg_write_in_step(key: str, values: list[Any]) -> int:
    for value in values:
        DBOS.write_stream(key, value)
    return len(values)


@DBOS.step()
def msg_send_in_step(destination: str, message: Any) -> str:
    DBOS.send(destination, message, "t")
    return "sent"


@DBOS.workflow()
def msg_events() -> str:
    DBOS.set_event("k", "first")  # 1
    DBOS.set_event("k", {"second": [2]})  # 2
    msg_set_event_in_step("j", "from a step")  # 3
    DBOS.set_event("none", None)  # 4
    return "done"


@DBOS.workflow()
def msg_event_source() -> str:
    DBOS.set_event("v", "first")
    message = DBOS.recv("next", timeout_seconds=LONG_WAIT)
    DBOS.set_event("v", "second")
    DBOS.set_event("answer", message)
    return "done"


@DBOS.workflow()
def msg_event_reader(target: str, key: str, timeout_seconds: float) -> Any:
    value = DBOS.get_event(target, key, timeout_seconds=timeout_seconds)
    crash_once()
    return value


@DBOS.workflow()
def msg_forkable(timeout_seconds: float) -> Any:
    DBOS.set_event("a", 1)  # 1
    DBOS.write_stream("s", "x")  # 2
    message = DBOS.recv("m", timeout_seconds=timeout_seconds)  # 3 and 4
    DBOS.set_event("a", 2)  # 5
    DBOS.write_stream("s", message)  # 6
    DBOS.set_event("b", 3)  # 7
    return message


@DBOS.workflow()
def msg_streamer(count: int, close: bool) -> str:
    for index in range(count):
        DBOS.write_stream("out", index)
    DBOS.write_stream("out", None)  # None is a value like any other
    if close:
        DBOS.close_stream("out")
    DBOS.recv("finish", timeout_seconds=LONG_WAIT)
    return "finished"


@DBOS.workflow()
def msg_writes_then_crashes() -> int:
    DBOS.write_stream("s", "a")  # 1
    msg_write_in_step("s", ["b", "c"])  # 2: the step's writes, no checkpoint of their own
    DBOS.close_stream("s")  # 3
    crash_once()
    DBOS.write_stream("after", "z")  # 4
    return 4


@DBOS.workflow()
def msg_reads_stream(target: str) -> list[Any]:
    return list(DBOS.read_stream(target, "s"))


@DBOS.workflow()
def msg_every_operation() -> dict[str, Any]:
    me = DBOS.workflow_id
    assert me is not None
    DBOS.send(me, "to myself", "t")  # 1
    received = DBOS.recv("t", timeout_seconds=RESULT_TIMEOUT)  # 2, 3
    missing = DBOS.get_event(me, "k", timeout_seconds=0)  # 4, 5
    DBOS.set_event("k", "v")  # 6
    DBOS.write_stream("s", "w")  # 7
    DBOS.close_stream("s")  # 8
    events = DBOS.get_all_events(me)  # 9
    return {"received": received, "missing": missing, "events": events, "step": msg_echo(10)}


@DBOS.workflow()
async def msg_every_operation_async(wait: bool) -> dict[str, Any]:
    me = DBOS.workflow_id
    assert me is not None
    await DBOS.send_async(me, "to myself", "t")  # 1
    received = await DBOS.recv_async("t", timeout_seconds=RESULT_TIMEOUT)  # 2, 3
    missing = await DBOS.get_event_async(me, "k", timeout_seconds=0)  # 4, 5
    await DBOS.set_event_async("k", "v")  # 6
    await DBOS.write_stream_async("s", "w")  # 7
    await DBOS.close_stream_async("s")  # 8
    events = await DBOS.get_all_events_async(me)  # 9
    step = msg_echo(10)  # 10
    woken = await DBOS.recv_async("wake", timeout_seconds=LONG_WAIT if wait else 0)  # 11, 12
    return {
        "received": received,
        "missing": missing,
        "events": events,
        "step": step,
        "woken": woken,
    }


@DBOS.workflow()
def msg_checkout(order_id: str) -> Any:
    DBOS.set_event("payment_url", f"https://pay.example/{order_id}")
    DBOS.write_stream("progress", "waiting for payment")
    payment = DBOS.recv("payment", timeout_seconds=LONG_WAIT)
    DBOS.write_stream("progress", f"paid {payment['amount']}")
    DBOS.set_event("order_url", f"https://shop.example/orders/{order_id}")
    return payment


EVERY_OPERATION = [
    (1, "DBOS.send"),
    (2, "DBOS.recv"),
    (3, "DBOS.sleep"),
    (4, "DBOS.getEvent"),
    (5, "DBOS.sleep"),
    (6, "DBOS.setEvent"),
    (7, "DBOS.writeStream"),
    (8, "DBOS.closeStream"),
    (9, "DBOS.get_events"),
    (10, "msg_echo"),
]
EVERY_RESULT = {"received": "to myself", "missing": None, "events": {"k": "v"}, "step": 10}


# -- send and recv ---------------------------------------------------------------------


def test_a_workflow_waiting_in_recv_holds_no_slot_and_send_wakes_it(
    sql: psycopg.Connection[Any],
) -> None:
    # Two waiters on a worker of two slots: others still run while they wait.
    waiters = [DBOS.start_workflow(msg_receive, "slot", 1, LONG_WAIT) for _ in range(2)]
    for waiter in waiters:
        wait_for_wait(sql, waiter.workflow_id, "msg:slot")
    quick = [DBOS.start_workflow(msg_quick, n) for n in range(4)]
    assert [h.get_result(timeout=RESULT_TIMEOUT) for h in quick] == [0, 1, 2, 3]
    for waiter in waiters:
        assert waiting_for(sql, waiter.workflow_id, "msg:slot")
    sent_at = _now_ms()
    for index, waiter in enumerate(waiters):
        DBOS.send(waiter.workflow_id, {"n": index}, "slot")
    # Far sooner than the 300 s timeout: the send published the workflow again.
    assert [w.get_result(timeout=RESULT_TIMEOUT) for w in waiters] == [[{"n": 0}], [{"n": 1}]]
    for waiter in waiters:
        assert steps(waiter.workflow_id) == [(1, "DBOS.recv"), (2, "DBOS.sleep")]
        assert status_row(sql, waiter.workflow_id)["wait_key"] is None
        # As DBOS times them: the deadline's DBOS.sleep is recorded at once; the recv
        # spans the wait, from then until the message came.
        [recv, deadline] = DBOS.list_workflow_steps(waiter.workflow_id)
        assert deadline["started_at_epoch_ms"] == deadline["completed_at_epoch_ms"]
        assert recv["started_at_epoch_ms"] == deadline["started_at_epoch_ms"] < sent_at
        assert recv["completed_at_epoch_ms"] >= sent_at


def test_one_topic_is_fifo_and_each_message_is_received_once_despite_duplicates(
    sql: psycopg.Connection[Any], celery_app: Celery
) -> None:
    handle = DBOS.start_workflow(msg_receive, "fifo", 6, LONG_WAIT)
    workflow_id = handle.workflow_id
    wait_for_wait(sql, workflow_id, "msg:fifo")
    for index in range(6):
        DBOS.send(workflow_id, f"m{index}", "fifo")
        # Every wake-up delivered three times: the copies race for the workflow.
        generation = status_row(sql, workflow_id)["dispatch_generation"]
        for _ in range(2):
            publish_workflow(
                celery_app, "msg_receive", workflow_id, queue=TEST_QUEUE, generation=generation
            )
    assert handle.get_result(timeout=RESULT_TIMEOUT) == [f"m{i}" for i in range(6)]
    # Each consumed once, in order, by recv ids 1, 3, 5, ... (each recv takes two ids).
    assert notifications(sql, workflow_id) == [("fifo", f"m{i}", 1 + 2 * i) for i in range(6)]


def test_messages_sent_before_the_workflow_reaches_recv_wait_for_it(
    sql: psycopg.Connection[Any],
) -> None:
    # A direct call: its step holds it before recv while the messages arrive.
    workflow_id = new_id("before-recv")
    gates[workflow_id] = threading.Event()
    thread, outcome = in_thread(call_as, workflow_id, msg_gated_receive, workflow_id, 3)
    wait_until(lambda: row_exists(sql, workflow_id), STATE_TIMEOUT, "the workflow to start")
    for message in ("one", "two", "three"):
        DBOS.send(workflow_id, message, "late")
    assert [m for _, m, consumed in notifications(sql, workflow_id) if consumed is None] == [
        "one",
        "two",
        "three",
    ]
    gates[workflow_id].set()
    assert joined(thread, outcome) == ["one", "two", "three"]
    # And under Celery.
    gate = new_id("gate")
    gates[gate] = threading.Event()
    handle = DBOS.start_workflow(msg_gated_receive, gate, 2)
    wait_until(
        lambda: status_row(sql, handle.workflow_id)["status"] == "PENDING",
        STATE_TIMEOUT,
        "the workflow to start",
    )
    DBOS.send(handle.workflow_id, "first", "late")
    DBOS.send(handle.workflow_id, "second", "late")
    gates[gate].set()
    assert handle.get_result(timeout=RESULT_TIMEOUT) == ["first", "second"]


def test_messages_sent_while_the_workflow_is_enqueued_wait_for_it(
    sql: psycopg.Connection[Any],
) -> None:
    handle = UNCONSUMED.enqueue(msg_receive, "queued", 3, 0)
    assert handle.get_status().status == "ENQUEUED"
    DBOS.send(handle.workflow_id, "a", "queued")
    DBOS.send(handle.workflow_id, "b", "queued")
    assert handle.get_status().status == "ENQUEUED"  # a send does not start it
    assert run_here(handle.workflow_id) == ["a", "b", None]


@DBOS.workflow()
def msg_sets_event(key: str, value: Any) -> None:
    DBOS.set_event(key, value)


@pytest.mark.parametrize("what", ["message", "event"])
def test_what_arrives_while_the_workflow_decides_to_wait_is_not_missed(
    sql: psycopg.Connection[Any], what: str
) -> None:
    # The send (or set_event) commits after the recv (or get_event) found nothing and
    # before the workflow is released to wait: the sender sees it executing (nothing to
    # publish), so the release itself must find it and make the workflow due at once.
    if what == "message":
        handle = UNCONSUMED.enqueue(msg_receive, "race", 1, LONG_WAIT)
    else:
        # get_event on a workflow that does not exist yet: it sets the event later.
        setter = new_id("setter")
        handle = UNCONSUMED.enqueue(msg_event_reader, setter, "race", LONG_WAIT)
    workflow_id = handle.workflow_id

    def arrive() -> None:
        if what == "message":  # from outside the workflow (a thread of its own)
            joined(*in_thread(DBOS.send, workflow_id, "raced", "race"))
        else:  # a workflow of its own, in a thread of its own (a context of its own)
            joined(*in_thread(call_as, setter, msg_sets_event, "race", "raced"))

    me, fired = threading.get_ident(), list[bool]()

    def before(statement: str) -> None:
        if "reschedule_to_wait(" in statement and threading.get_ident() == me and not fired:
            fired.append(True)
            arrive()

    # The execution's statements go to the driver directly: the store reports them.
    store = DBOS._service().runtime.process.store
    store.connections.statement_listeners.append(before)
    try:
        with pytest.raises(RescheduleWorkflow) as signal:
            DBOS._service().runtime.process.engine().run(
                workflow_id, RunOptions(inline_retries=False)
            )
    finally:
        store.connections.statement_listeners.remove(before)
    assert signal.value.countdown_seconds == 0  # due at once, not in 300 s
    assert status_row(sql, workflow_id)["wait_key"] is None
    expected = ["raced"] if what == "message" else "raced"
    assert run_here(workflow_id) == expected


def test_topics_are_independent_and_recv_none_receives_only_the_none_topic(
    sql: psycopg.Connection[Any],
) -> None:
    handle = UNCONSUMED.enqueue(msg_receive_topics, ["b", None, "a", None, "", "a", None, "b"])
    workflow_id = handle.workflow_id
    for topic, message in [
        ("a", "a1"),
        (None, "n1"),
        ("b", "b1"),
        ("", "e1"),  # the empty topic is a topic of its own
        ("a", "a2"),
        (None, "n2"),
    ]:
        DBOS.send(workflow_id, message, topic)
    assert run_here(workflow_id) == ["b1", "n1", "a1", "n2", "e1", "a2", None, None]
    # DBOS's sentinel for the None topic.
    assert [topic for topic, _, _ in notifications(sql, workflow_id)] == [
        "a",
        "__null__topic__",
        "b",
        "",
        "a",
        "__null__topic__",
    ]


def test_an_idempotency_key_delivers_once_per_recipient(
    sql: psycopg.Connection[Any], client: DBOSClient
) -> None:
    first = UNCONSUMED.enqueue(msg_receive, "hook", 3, 0)
    second = UNCONSUMED.enqueue(msg_receive, "hook", 3, 0)
    for attempt in ("first", "retried"):
        # A retried webhook: the same key, twice, to each of two workflows.
        DBOS.send(first.workflow_id, f"{attempt} 1", "hook", idempotency_key="hook-1")
        DBOS.send(second.workflow_id, f"{attempt} 1", "hook", idempotency_key="hook-1")
        client.send(first.workflow_id, f"{attempt} 2", "hook", "hook-2")
    # The first send of each key wins; the key is scoped to its recipient.
    assert run_here(first.workflow_id) == ["first 1", "first 2", None]
    assert run_here(second.workflow_id) == ["first 1", None, None]
    uuids = sql.execute(
        "SELECT destination_uuid, message_uuid FROM celery_durable.notifications "
        "WHERE destination_uuid IN (%s, %s) ORDER BY message_id",
        (first.workflow_id, second.workflow_id),
    ).fetchall()
    assert uuids == [
        (first.workflow_id, f"hook-1::{first.workflow_id}"),
        (second.workflow_id, f"hook-1::{second.workflow_id}"),
        (first.workflow_id, f"hook-2::{first.workflow_id}"),
    ]


def test_recv_returns_none_after_its_timeout(sql: psycopg.Connection[Any]) -> None:
    # A direct call waits in-process.
    workflow_id = new_id("timeout")
    assert call_as(workflow_id, msg_receive, "never", 1, 0.2) == [None]
    [received, deadline] = DBOS.list_workflow_steps(workflow_id)
    assert (received["function_name"], received["output"]) == ("DBOS.recv", None)
    assert deadline["function_name"] == "DBOS.sleep"
    assert deadline["output"] >= received["started_at_epoch_ms"] - 1000
    # The recv spans its wait: it times out at its deadline (it started as the deadline
    # was recorded: in-process, just before the statement that recorded it).
    assert 0 <= deadline["started_at_epoch_ms"] - received["started_at_epoch_ms"] < 1000
    assert received["completed_at_epoch_ms"] >= deadline["output"]
    # Under Celery: rescheduled for the timeout, then None.
    handle = DBOS.start_workflow(msg_receive, "never", 2, 0.5)
    assert handle.get_result(timeout=RESULT_TIMEOUT) == [None, None]
    assert steps(handle.workflow_id) == [
        (1, "DBOS.recv"),
        (2, "DBOS.sleep"),
        (3, "DBOS.recv"),
        (4, "DBOS.sleep"),
    ]
    first, first_deadline = DBOS.list_workflow_steps(handle.workflow_id)[:2]
    assert first["started_at_epoch_ms"] == first_deadline["started_at_epoch_ms"]
    assert first["completed_at_epoch_ms"] >= first_deadline["output"]
    # A message sent after the timeout is left for a later recv.
    DBOS.send(handle.workflow_id, "too late", "never")
    assert notifications(sql, handle.workflow_id) == [("never", "too late", None)]


def test_the_recv_deadline_is_durable_a_replay_does_not_wait_again(
    sql: psycopg.Connection[Any],
) -> None:
    handle = UNCONSUMED.enqueue(msg_receive_then_crash)
    workflow_id = handle.workflow_id
    recv_timeout[workflow_id] = 0.5
    engine = DBOS._service().runtime.process.engine()
    with pytest.raises(RescheduleWorkflow) as signal:
        engine.run(workflow_id, RunOptions(inline_retries=False))
    assert signal.value.wait is not None and signal.value.wait.key == "t"
    [deadline] = DBOS.list_workflow_steps(workflow_id)
    assert (deadline["function_id"], deadline["function_name"]) == (2, "DBOS.sleep")
    wait_until(
        lambda: DBOS.list_workflow_steps(workflow_id)[0]["output"] < _now_ms(),
        STATE_TIMEOUT,
        "the deadline to pass",
    )
    # The code now asks for an hour; the replay keeps the recorded deadline, which has
    # passed: None at once (waiting an hour would time the test out).
    recv_timeout[workflow_id] = 3600
    crash.add(workflow_id)
    thread, outcome = in_thread(call_as, workflow_id, msg_receive_then_crash)
    with pytest.raises(SimulatedCrash):
        joined(thread, outcome)
    assert DBOS.list_workflow_steps(workflow_id)[1]["output"] == deadline["output"]
    # The recv's outcome (None) is recorded: later replays neither wait nor receive.
    DBOS.send(workflow_id, "too late", "t")
    thread, outcome = in_thread(call_as, workflow_id, msg_receive_then_crash)
    assert joined(thread, outcome) is None
    assert notifications(sql, workflow_id) == [("t", "too late", None)]


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_recv_outside_a_workflow_or_in_a_step_is_an_error() -> None:
    with pytest.raises(DBOSException, match=r"recv\(\) must be called from within a workflow"):
        DBOS.recv("t", timeout_seconds=0)
    with pytest.raises(DBOSException, match=r"recv\(\) must be called from within a workflow"):
        asyncio.run(DBOS.recv_async("t", timeout_seconds=0))
    workflow_id = new_id("recv-in-step")
    assert (
        call_as(workflow_id, msg_calls_recv_in_step)
        == "recv() must be called from within a workflow"
    )
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert step["function_name"] == "msg_recv_in_step"
    assert isinstance(step["error"], DBOSException)


def test_cancel_ends_a_wait_in_recv(sql: psycopg.Connection[Any]) -> None:
    # Under Celery: the workflow waits released; the cancel settles it.
    handle = DBOS.start_workflow(msg_receive, "c", 1, LONG_WAIT)
    wait_for_wait(sql, handle.workflow_id, "msg:c")
    DBOS.cancel_workflow(handle.workflow_id)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=RESULT_TIMEOUT)
    # A message sent later is kept, and does not run the cancelled workflow again.
    DBOS.send(handle.workflow_id, "late", "c")
    assert handle.get_status().status == "CANCELLED"
    assert notifications(sql, handle.workflow_id) == [("c", "late", None)]
    # A direct call waiting in-process: the cancel ends its wait.
    workflow_id = new_id("cancel-direct")
    thread, outcome = in_thread(call_as, workflow_id, msg_receive, "c", 1, LONG_WAIT)
    wait_until(
        lambda: row_exists(sql, workflow_id) and len(DBOS.list_workflow_steps(workflow_id)) == 1,
        STATE_TIMEOUT,
        "the direct call to wait in recv",
    )
    DBOS.cancel_workflow(workflow_id)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        joined(thread, outcome)
    assert DBOS.retrieve_workflow(workflow_id).get_status().status == "CANCELLED"
    assert steps(workflow_id) == [(2, "DBOS.sleep")]


def test_a_message_that_is_not_json_is_refused_and_nothing_is_written(
    sql: psycopg.Connection[Any], client: DBOSClient
) -> None:
    destination = UNCONSUMED.enqueue(msg_receive, "t", 1, 0).workflow_id
    with pytest.raises(DBOSSerializationError):
        DBOS.send(destination, object(), "t")
    with pytest.raises(DBOSSerializationError):
        client.send(destination, lambda: None, "t", "key-1")
    with pytest.raises(DBOSSerializationError):
        DBOS.send(destination, {"nested": {1, object()}}, idempotency_key="key-2")
    # In workflow code: refused before the operation takes an id or writes anything.
    sender = new_id("bad-sender")
    assert call_as(sender, msg_sends_bad, destination) == "refused"
    assert steps(sender) == []
    assert notifications(sql, destination) == []
    assert sql.execute(
        "SELECT count(*) FROM celery_durable.notifications "
        "WHERE message_uuid IN ('key-1::' || %s, 'key-2::' || %s)",
        (destination, destination),
    ).fetchone() == (0,)


def test_send_to_an_unknown_workflow_is_an_error_everywhere(
    sql: psycopg.Connection[Any], client: DBOSClient
) -> None:
    missing = new_id("no-such-workflow")
    expected = f"DBOS Error 5: Non-existent `send` destination workflow ID: {missing}"
    with pytest.raises(DBOSNonExistentWorkflowError) as outside:
        DBOS.send(missing, "hello")
    assert str(outside.value) == expected
    assert outside.value.dbos_error_code == 5
    with pytest.raises(DBOSNonExistentWorkflowError) as from_client:
        client.send(missing, "hello", "t", "key")
    assert str(from_client.value) == expected
    # In workflow code the failure is the operation's recorded outcome: a replay raises
    # it again without sending, even once the destination exists.
    sender = new_id("sender")
    crash.add(sender)
    with pytest.raises(SimulatedCrash):
        call_as(sender, msg_sends_to, missing, "hello")
    [send] = DBOS.list_workflow_steps(sender)
    assert send["function_name"] == "DBOS.send"
    assert isinstance(send["error"], DBOSNonExistentWorkflowError)
    assert call_as(missing, msg_quick, 1) == 1  # the destination exists now
    assert call_as(sender, msg_sends_to, missing, "hello") == expected
    assert notifications(sql, missing) == []
    # Under Celery too.
    handle = DBOS.start_workflow(msg_sends_to, new_id("elsewhere"), "hello")
    assert handle.get_result(timeout=RESULT_TIMEOUT).startswith(
        "DBOS Error 5: Non-existent `send` destination workflow ID: elsewhere-"
    )


def test_send_in_workflow_code_is_durable_and_a_replay_does_not_send_again(
    sql: psycopg.Connection[Any],
) -> None:
    destination = UNCONSUMED.enqueue(msg_receive, "t", 2, 0).workflow_id
    sender = new_id("sender")
    crash.add(sender)
    with pytest.raises(SimulatedCrash):
        call_as(sender, msg_sends_to, destination, "once")
    assert call_as(sender, msg_sends_to, destination, "once") == "sent"
    assert steps(sender) == [(1, "DBOS.send")]
    assert notifications(sql, destination) == [("t", "once", None)]
    # From a step it is a plain send, as in DBOS: no operation of its own.
    step_sender = new_id("step-sender")
    with SetWorkflowID(step_sender):
        msg_step_sends(destination)
    assert steps(step_sender) == [(1, "msg_send_in_step")]
    assert run_here(destination) == ["once", "from a step"]


@DBOS.workflow()
def msg_step_sends(destination: str) -> str:
    return str(msg_send_in_step(destination, "from a step"))


# -- events ----------------------------------------------------------------------------


def test_set_event_last_write_wins_and_the_history_is_kept(
    sql: psycopg.Connection[Any],
) -> None:
    workflow_id = new_id("events")
    assert call_as(workflow_id, msg_events) == "done"
    assert DBOS.get_event(workflow_id, "k", timeout_seconds=0) == {"second": [2]}
    assert DBOS.get_all_events(workflow_id) == {
        "k": {"second": [2]},
        "j": "from a step",
        "none": None,
    }
    assert asyncio.run(DBOS.get_all_events_async(workflow_id))["j"] == "from a step"
    # The step's set_event is recorded under the step's id, with no checkpoint of its own.
    assert events_history(sql, workflow_id) == [
        (1, "k", "first"),
        (2, "k", {"second": [2]}),
        (3, "j", "from a step"),
        (4, "none", None),
    ]
    assert steps(workflow_id) == [
        (1, "DBOS.setEvent"),
        (2, "DBOS.setEvent"),
        (3, "msg_set_event_in_step"),
        (4, "DBOS.setEvent"),
    ]
    # A replay writes nothing.
    assert call_as(workflow_id, msg_events) == "done"
    assert len(events_history(sql, workflow_id)) == 4
    with pytest.raises(
        DBOSException, match=r"set_event\(\) must be called from within a workflow or step"
    ):
        DBOS.set_event("k", "outside")


def test_get_event_returns_none_after_its_timeout() -> None:
    workflow_id = new_id("events")
    call_as(workflow_id, msg_events)
    assert DBOS.get_event(workflow_id, "never", timeout_seconds=0.3) is None
    assert DBOS.get_event(new_id("no-such-workflow"), "k", timeout_seconds=0.3) is None
    assert asyncio.run(DBOS.get_event_async(workflow_id, "never", timeout_seconds=0.3)) is None
    assert DBOS.get_all_events(new_id("no-such-workflow")) == {}
    # In workflow code (a direct call, then under Celery): recorded as None.
    reader = new_id("reader")
    assert call_as(reader, msg_event_reader, workflow_id, "never", 0.3) is None
    handle = DBOS.start_workflow(msg_event_reader, workflow_id, "never", 0.5)
    assert handle.get_result(timeout=RESULT_TIMEOUT) is None
    for read in (reader, handle.workflow_id):
        [get, deadline] = DBOS.list_workflow_steps(read)
        assert (get["function_id"], get["function_name"], get["output"]) == (
            1,
            "DBOS.getEvent",
            None,
        )
        assert (deadline["function_id"], deadline["function_name"]) == (2, "DBOS.sleep")


def test_get_event_in_a_workflow_frees_its_slot_is_woken_and_replays_its_value(
    sql: psycopg.Connection[Any],
) -> None:
    source = DBOS.start_workflow(msg_event_source)
    assert DBOS.get_event(source.workflow_id, "v", timeout_seconds=RESULT_TIMEOUT) == "first"
    # A reader that reads "first", then crashes before finishing.
    reader = new_id("reader")
    crash.add(reader)
    with pytest.raises(SimulatedCrash):
        call_as(reader, msg_event_reader, source.workflow_id, "v", RESULT_TIMEOUT)
    # A workflow under Celery waiting for an event not yet set: released, no slot held.
    waiter = DBOS.start_workflow(msg_event_reader, source.workflow_id, "answer", LONG_WAIT)
    wait_for_wait(sql, waiter.workflow_id, f"event:{source.workflow_id}::answer")
    wait_for_wait(sql, source.workflow_id, "msg:next")
    assert DBOS.start_workflow(msg_quick, 7).get_result(timeout=RESULT_TIMEOUT) == 7
    # The source's set_event wakes the waiter at once (long before its 300 s).
    sent_at = _now_ms()
    DBOS.send(source.workflow_id, {"paid": True}, "next")
    assert waiter.get_result(timeout=RESULT_TIMEOUT) == {"paid": True}
    # The getEvent spans the wait, from its deadline's recording to the event.
    [get, deadline] = DBOS.list_workflow_steps(waiter.workflow_id)
    assert get["started_at_epoch_ms"] == deadline["started_at_epoch_ms"] < sent_at
    assert get["completed_at_epoch_ms"] >= sent_at
    assert source.get_result(timeout=RESULT_TIMEOUT) == "done"
    assert DBOS.get_event(source.workflow_id, "v", timeout_seconds=0) == "second"
    # The crashed reader replays the value it recorded, though the event changed since.
    assert call_as(reader, msg_event_reader, source.workflow_id, "v", RESULT_TIMEOUT) == "first"
    assert steps(reader) == [(1, "DBOS.getEvent"), (2, "DBOS.sleep")]


@DBOS.step()
async def msg_async_step(value: str) -> str:
    return value


@DBOS.workflow()
async def msg_gathers_operations() -> list[Any]:
    me = DBOS.workflow_id
    assert me is not None
    # Created in this order; the first three go to threads, the step does not.
    results = await asyncio.gather(
        asyncio.create_task(DBOS.send_async(me, "hi", "t")),
        asyncio.create_task(DBOS.set_event_async("k", "v")),
        asyncio.create_task(DBOS.get_workflow_status_async(me)),
        asyncio.create_task(msg_async_step("step")),
    )
    return [results[0], results[1], results[2].workflow_id, results[3]]


def test_async_operations_in_tasks_are_numbered_in_call_order() -> None:
    # As DBOS numbers them: each takes its function id when called, before it waits
    # for its thread, so a replay (whatever the threads' timing) finds the same ids.
    async def direct() -> list[Any]:
        with SetWorkflowID(new_id("gathered")):
            return await msg_gathers_operations()

    for result in (
        asyncio.run(direct()),  # a direct call
        DBOS.start_workflow(msg_gathers_operations).get_result(timeout=RESULT_TIMEOUT),
    ):
        assert result[0] is None and result[1] is None and result[3] == "step"
        assert steps(result[2]) == [
            (1, "DBOS.send"),
            (2, "DBOS.setEvent"),
            (3, "DBOS.getStatus"),
            (4, msg_async_step.__qualname__),
        ]


def test_fork_copies_events_and_streams_of_earlier_operations_but_no_messages(
    sql: psycopg.Connection[Any],
) -> None:
    original = DBOS.start_workflow(msg_forkable, LONG_WAIT)
    wait_for_wait(sql, original.workflow_id, "msg:m")
    DBOS.send(original.workflow_id, "original", "m")
    assert original.get_result(timeout=RESULT_TIMEOUT) == "original"
    assert DBOS.get_all_events(original.workflow_id) == {"a": 2, "b": 3}

    # From step 3 (the recv): operations 1 and 2 are copied with what they wrote.
    fork = DBOS.fork_workflow(original.workflow_id, 3)
    wait_for_wait(sql, fork.workflow_id, "msg:m")  # the message was not copied
    assert notifications(sql, fork.workflow_id) == []
    assert DBOS.get_all_events(fork.workflow_id) == {"a": 1}
    assert events_history(sql, fork.workflow_id) == [(1, "a", 1)]
    assert stream_rows(sql, fork.workflow_id) == [("s", 0, 2, "x")]
    DBOS.send(fork.workflow_id, "forked", "m")
    assert fork.get_result(timeout=RESULT_TIMEOUT) == "forked"
    assert events_history(sql, fork.workflow_id) == [(1, "a", 1), (5, "a", 2), (7, "b", 3)]
    assert DBOS.get_all_events(fork.workflow_id) == {"a": 2, "b": 3}
    assert list(DBOS.read_stream(fork.workflow_id, "s")) == ["x", "forked"]

    # From step 5: the recv's recorded message is replayed; no message needed.
    later = DBOS.fork_workflow(original.workflow_id, 5)
    assert later.get_result(timeout=RESULT_TIMEOUT) == "original"
    assert notifications(sql, later.workflow_id) == []
    assert list(DBOS.read_stream(later.workflow_id, "s")) == ["x", "original"]


# -- streams ---------------------------------------------------------------------------


def test_a_stream_is_read_in_order_and_closing_it_ends_its_readers(
    sql: psycopg.Connection[Any],
) -> None:
    handle = DBOS.start_workflow(msg_streamer, 3, True)
    # Started at once: the reader waits for values the writer has not written yet.
    thread, outcome = in_thread(lambda: list(DBOS.read_stream(handle.workflow_id, "out")))
    # It ends at the close, while the writer still runs (it waits in recv).
    assert joined(thread, outcome) == [0, 1, 2, None]
    assert handle.get_status().status == "PENDING"
    assert list(DBOS.read_stream(handle.workflow_id, "out", offset=2)) == [2, None]
    DBOS.send(handle.workflow_id, "now", "finish")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "finished"
    assert steps(handle.workflow_id)[:5] == [
        (1, "DBOS.writeStream"),
        (2, "DBOS.writeStream"),
        (3, "DBOS.writeStream"),
        (4, "DBOS.writeStream"),
        (5, "DBOS.closeStream"),
    ]
    assert [row[1:3] for row in stream_rows(sql, handle.workflow_id)] == [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
    ]


def test_a_reader_ends_when_the_writer_finishes_without_closing(
    sql: psycopg.Connection[Any],
) -> None:
    handle = DBOS.start_workflow(msg_streamer, 2, False)
    values: list[Any] = []
    thread, outcome = in_thread(lambda: values.extend(DBOS.read_stream(handle.workflow_id, "out")))
    wait_for_wait(sql, handle.workflow_id, "msg:finish")
    wait_until(lambda: values == [0, 1, None], STATE_TIMEOUT, "the values written so far")
    assert thread.is_alive()  # the writer may still write
    DBOS.send(handle.workflow_id, "now", "finish")
    joined(thread, outcome)
    assert values == [0, 1, None]
    assert handle.get_status().status == "SUCCESS"

    async def read_async() -> list[Any]:
        return [value async for value in DBOS.read_stream_async(handle.workflow_id, "out")]

    assert asyncio.run(read_async()) == [0, 1, None]


def test_read_stream_async_follows_a_live_stream(sql: psycopg.Connection[Any]) -> None:
    handle = DBOS.start_workflow(msg_streamer, 4, True)

    async def read_async() -> list[Any]:
        stream: AsyncIterator[Any] = DBOS.read_stream_async(handle.workflow_id, "out")
        return [value async for value in stream]

    assert asyncio.run(read_async()) == [0, 1, 2, 3, None]
    DBOS.send(handle.workflow_id, "now", "finish")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "finished"


def test_a_stream_read_times_out_with_dbos_error_16(sql: psycopg.Connection[Any]) -> None:
    handle = DBOS.start_workflow(msg_streamer, 0, False)
    wait_for_wait(sql, handle.workflow_id, "msg:finish")
    stream = DBOS.read_stream(handle.workflow_id, "out", timeout_seconds=0.5)
    assert next(stream) is None  # the one value written
    with pytest.raises(DBOSStreamTimeoutError) as timeout:
        next(stream)
    assert timeout.value.dbos_error_code == 16
    assert str(timeout.value) == (
        f"DBOS Error 16: No value arrived on stream out of workflow {handle.workflow_id} "
        "within 0.5 seconds"
    )

    async def read_async() -> list[Any]:
        stream = DBOS.read_stream_async(handle.workflow_id, "empty", timeout_seconds=0.3)
        return [value async for value in stream]

    with pytest.raises(DBOSStreamTimeoutError):
        asyncio.run(read_async())
    DBOS.send(handle.workflow_id, "now", "finish")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "finished"
    with pytest.raises(DBOSNonExistentWorkflowError, match="Non-existent target workflow ID"):
        list(DBOS.read_stream(new_id("no-such-workflow"), "out"))


def test_a_replayed_workflow_does_not_write_its_stream_twice(
    sql: psycopg.Connection[Any],
) -> None:
    workflow_id = new_id("streams")
    crash.add(workflow_id)
    with pytest.raises(SimulatedCrash):
        call_as(workflow_id, msg_writes_then_crashes)
    assert call_as(workflow_id, msg_writes_then_crashes) == 4
    # Each value once; the step's writes carry the step's id.
    assert stream_rows(sql, workflow_id) == [
        ("after", 0, 4, "z"),
        ("s", 0, 1, "a"),
        ("s", 1, 2, "b"),
        ("s", 2, 2, "c"),
        ("s", 3, 3, "__DBOS_STREAM_CLOSED__"),
    ]
    assert steps(workflow_id) == [
        (1, "DBOS.writeStream"),
        (2, "msg_write_in_step"),
        (3, "DBOS.closeStream"),
        (4, "DBOS.writeStream"),
    ]
    assert list(DBOS.read_stream(workflow_id, "s")) == ["a", "b", "c"]
    assert list(DBOS.read_stream(workflow_id, "after")) == ["z"]
    # Read in workflow code: one operation per value and one for the end, replayed.
    reader = new_id("stream-reader")
    for _ in range(2):
        assert call_as(reader, msg_reads_stream, workflow_id) == ["a", "b", "c"]
    assert steps(reader) == [(i, "DBOS.readStream") for i in range(1, 5)]
    with pytest.raises(
        DBOSException, match=r"write_stream\(\) must be called from within a workflow or step"
    ):
        DBOS.write_stream("s", "outside")
    with pytest.raises(
        DBOSException, match=r"close_stream\(\) must be called from within a workflow or step"
    ):
        DBOS.close_stream("s")


# -- DBOSClient and async twins --------------------------------------------------------


def test_a_client_drives_a_checkout(sql: psycopg.Connection[Any], client: DBOSClient) -> None:
    handle = client.enqueue({"workflow_name": "msg_checkout"}, "o-1")
    workflow_id = handle.workflow_id
    url = client.get_event(workflow_id, "payment_url", timeout_seconds=RESULT_TIMEOUT)
    assert url == "https://pay.example/o-1"
    # The payment provider retries its webhook: delivered once.
    for _ in range(2):
        client.send(workflow_id, {"amount": 10}, "payment", "webhook-o-1")
    order_url = client.get_event(workflow_id, "order_url", timeout_seconds=RESULT_TIMEOUT)
    assert order_url == "https://shop.example/orders/o-1"
    assert handle.get_result(timeout=RESULT_TIMEOUT) == {"amount": 10}
    assert client.get_all_events(workflow_id) == {
        "payment_url": "https://pay.example/o-1",
        "order_url": "https://shop.example/orders/o-1",
    }
    assert list(client.read_stream(workflow_id, "progress")) == [
        "waiting for payment",
        "paid 10",
    ]
    assert notifications(sql, workflow_id) == [("payment", {"amount": 10}, 3)]


def test_a_client_drives_a_checkout_with_the_async_twins(
    sql: psycopg.Connection[Any], client: DBOSClient
) -> None:
    handle = client.enqueue({"workflow_name": "msg_checkout"}, "o-2")
    workflow_id = handle.workflow_id

    async def drive() -> dict[str, Any]:
        url = await client.get_event_async(workflow_id, "payment_url", RESULT_TIMEOUT)
        assert url == "https://pay.example/o-2"
        progress = client.read_stream_async(workflow_id, "progress")
        first = await anext(progress)
        for _ in range(2):
            await client.send_async(workflow_id, {"amount": 20}, "payment", "webhook-o-2")
        rest = [value async for value in progress]
        return {
            "progress": [first, *rest],
            "order_url": await client.get_event_async(workflow_id, "order_url", RESULT_TIMEOUT),
            "events": await client.get_all_events_async(workflow_id),
        }

    driven = asyncio.run(drive())
    assert driven["progress"] == ["waiting for payment", "paid 20"]
    assert driven["order_url"] == "https://shop.example/orders/o-2"
    assert set(driven["events"]) == {"payment_url", "order_url"}
    assert handle.get_result(timeout=RESULT_TIMEOUT) == {"amount": 20}
    assert notifications(sql, workflow_id) == [("payment", {"amount": 20}, 3)]
    # A client's unknown destination is DBOS's error too.
    with pytest.raises(DBOSNonExistentWorkflowError):
        asyncio.run(client.send_async(new_id("no-such-workflow"), "x"))


def test_every_operation_takes_dbos_function_ids() -> None:
    workflow_id = new_id("numbering")
    assert call_as(workflow_id, msg_every_operation) == EVERY_RESULT
    assert steps(workflow_id) == EVERY_OPERATION
    # A replay returns the same without doing anything again.
    assert call_as(workflow_id, msg_every_operation) == EVERY_RESULT
    handle = DBOS.start_workflow(msg_every_operation)
    assert handle.get_result(timeout=RESULT_TIMEOUT) == EVERY_RESULT
    assert steps(handle.workflow_id) == EVERY_OPERATION
    recorded = DBOS.list_workflow_steps(handle.workflow_id)
    # The recv's and the get_event's recorded deadlines (epoch ms).
    assert isinstance(recorded[2]["output"], int) and isinstance(recorded[4]["output"], int)


def test_async_twins_in_an_async_workflow(sql: psycopg.Connection[Any]) -> None:
    expected_steps = [*EVERY_OPERATION, (11, "DBOS.recv"), (12, "DBOS.sleep")]
    # A direct call.
    workflow_id = new_id("async")

    async def call() -> dict[str, Any]:
        with SetWorkflowID(workflow_id):
            return await msg_every_operation_async(False)

    assert asyncio.run(call()) == {**EVERY_RESULT, "woken": None}
    assert steps(workflow_id) == expected_steps
    # Under Celery, woken by send_async while it waits in recv_async.
    handle = DBOS.start_workflow(msg_every_operation_async, True)
    wait_for_wait(sql, handle.workflow_id, "msg:wake")
    asyncio.run(DBOS.send_async(handle.workflow_id, "awake", "wake"))
    assert handle.get_result(timeout=RESULT_TIMEOUT) == {**EVERY_RESULT, "woken": "awake"}
    assert steps(handle.workflow_id) == expected_steps
