"""Messages with real ``celery worker`` subprocesses: a waiting workflow holds no slot,
a ``send`` wakes it (Redis and RabbitMQ), and a message is received once whatever
happens to the workers.

The workflow is ``tests.integration.fault_app.receives``: each ``recv`` on topic "pay" (timeout
300 s) is followed by a step whose side effect is counted in PostgreSQL. A workflow
that finishes within RESULT_TIMEOUT was woken by its message, not by its timeout.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import redis

from tests.integration.test_faults import (
    Faults,
    any_broker,
    fault_database,
    faults,
    pool,
    redis_faults,
    wait_until,
)

__all__ = ["any_broker", "fault_database", "faults", "pool", "redis_faults"]  # fixtures used below

RESULT_TIMEOUT = 60.0
STATE_TIMEOUT = 60.0


def workflow_row(faults: Faults, workflow_id: str) -> dict[str, Any]:
    cursor = faults.db.execute(
        "SELECT status, execution_active, wait_key, next_dispatch_at_epoch_ms, "
        "recovery_attempts FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    )
    row = cursor.fetchone()
    assert row is not None, workflow_id
    return dict(zip([c.name for c in cursor.description or []], row, strict=True))


def waiting_in_recv(faults: Faults, workflow_id: str, received: int) -> bool:
    """Released by its worker, waiting for its next message after ``received`` ones."""
    row = workflow_row(faults, workflow_id)
    return (
        row["status"] == "PENDING"
        and not row["execution_active"]
        and row["wait_key"] == "msg:pay"
        and sum(faults.effects(workflow_id).values()) == received
    )


def wait_in_recv(faults: Faults, workflow_id: str, received: int) -> None:
    wait_until(
        lambda: waiting_in_recv(faults, workflow_id, received),
        STATE_TIMEOUT,
        f"{workflow_id} to wait in recv after {received} messages",
    )


def notifications(faults: Faults, workflow_id: str) -> list[tuple[Any, int | None]]:
    """``(message, consumed_by_function_id)`` of every message sent to it, in order."""
    rows = faults.db.execute(
        "SELECT message, consumed_by_function_id FROM celery_durable.notifications "
        "WHERE destination_uuid = %s ORDER BY message_id",
        (workflow_id,),
    ).fetchall()
    return [(json.loads(message), consumed) for message, consumed in rows]


def test_a_concurrency_1_worker_runs_others_while_one_waits_and_send_wakes_it(
    faults: Faults,
) -> None:
    faults.start_worker(concurrency=1)
    waiter = faults.enqueue("receives", 1)
    wait_in_recv(faults, waiter.workflow_id, 0)
    # The only slot is free: another workflow runs to its end meanwhile.
    other = faults.enqueue("steps", 2)
    assert other.get_result(timeout=RESULT_TIMEOUT) == 2
    assert waiting_in_recv(faults, waiter.workflow_id, 0)
    # The send publishes the waiter again at once (its own countdown is 300 s).
    faults.client.send(waiter.workflow_id, "paid", "pay")
    assert waiter.get_result(timeout=RESULT_TIMEOUT) == ["paid"]
    assert faults.effects(waiter.workflow_id) == Counter({"took:paid": 1})
    assert notifications(faults, waiter.workflow_id) == [("paid", 1)]


def test_sigkill_while_waiting_then_a_send_while_no_worker_runs_is_received_once(
    faults: Faults,
) -> None:
    first = faults.start_worker()
    handle = faults.enqueue("receives", 2)
    workflow_id = handle.workflow_id
    wait_in_recv(faults, workflow_id, 0)
    first.kill()
    assert waiting_in_recv(faults, workflow_id, 0)
    # No worker runs: the message is stored and the workflow made due.
    faults.client.send(workflow_id, "m1", "pay")
    row = workflow_row(faults, workflow_id)
    assert (row["status"], row["execution_active"], row["wait_key"]) == ("PENDING", False, None)
    assert notifications(faults, workflow_id) == [("m1", None)]

    faults.start_worker()
    wait_in_recv(faults, workflow_id, 1)  # took m1, waits for the next one
    faults.client.send(workflow_id, "m2", "pay")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == ["m1", "m2"]
    assert faults.effects(workflow_id) == Counter({"took:m1": 1, "took:m2": 1})
    # recv ids 1 and 4 (each recv takes two ids; the step between them one).
    assert notifications(faults, workflow_id) == [("m1", 1), ("m2", 4)]
    # It was not executing when its worker died: no recovery attempt charged.
    assert workflow_row(faults, workflow_id)["recovery_attempts"] == 0


def test_sigkill_right_after_recv_is_checkpointed_replays_that_message(
    faults: Faults,
) -> None:
    faults.add_trigger("after-recv:0", "kill-worker")
    # Sent while the workflow is ENQUEUED and no worker runs: they wait for it.
    handle = faults.enqueue("receives", 2)
    workflow_id = handle.workflow_id
    faults.client.send(workflow_id, "m1", "pay")
    faults.client.send(workflow_id, "m2", "pay")
    assert handle.get_status().status == "ENQUEUED"
    first = faults.start_worker()
    first.process.wait(timeout=RESULT_TIMEOUT)  # killed by the trigger after recv
    # m1 was consumed and checkpointed; its step never ran.
    assert notifications(faults, workflow_id) == [("m1", 1), ("m2", None)]
    assert faults.effects(workflow_id) == Counter()

    faults.start_worker()
    # The replay returns the recorded m1; the next recv takes m2.
    assert handle.get_result(timeout=RESULT_TIMEOUT) == ["m1", "m2"]
    assert faults.effects(workflow_id) == Counter({"took:m1": 1, "took:m2": 1})
    assert notifications(faults, workflow_id) == [("m1", 1), ("m2", 4)]
    assert workflow_row(faults, workflow_id)["recovery_attempts"] == 1


def test_a_lost_wake_up_costs_latency_not_the_message(redis_faults: Faults) -> None:
    faults = redis_faults
    first = faults.start_worker(beat=False)
    handle = faults.enqueue("receives", 1)
    workflow_id = handle.workflow_id
    wait_in_recv(faults, workflow_id, 0)
    first.kill()
    faults.client.send(workflow_id, "m1", "pay")
    # Every message is lost: the wake-up the send published, and the countdown the
    # dead worker held.
    redis.Redis.from_url(faults.broker_url).flushdb()
    faults.start_worker(beat=False)
    # The workers' sweep finds the workflow due and overdue, and publishes it.
    assert handle.get_result(timeout=RESULT_TIMEOUT) == ["m1"]
    assert faults.effects(workflow_id) == Counter({"took:m1": 1})
    assert notifications(faults, workflow_id) == [("m1", 1)]
    assert f"Recovery: published workflow {workflow_id}" in faults.worker_log()
