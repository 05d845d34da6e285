"""The fence: one connection per process holds the locks of all its executions, and an
execution that lost its fence cannot write once another owns the workflow.

Store-level tests against the real PostgreSQL: each ``SystemStore`` stands for one
worker process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store import NewWorkflow, SystemStore
from celery_durable.store.fence import FenceLost
from tests.conftest import DATABASE_URL

POOL_SIZE = 2


@pytest.fixture
def stores(dbos: Any) -> Iterator[list[SystemStore]]:
    """Two "processes" on the (migrated) test database."""
    made = [SystemStore(DATABASE_URL, pool_size=POOL_SIZE) for _ in range(2)]
    yield made
    for store in made:
        store.dispose()


def new_row(status: str = "ENQUEUED") -> NewWorkflow:
    return NewWorkflow(
        workflow_uuid=f"fence-{uuid.uuid4()}",
        name="tests.fencing.workflow",
        status=status,  # type: ignore[arg-type]
        queue_name=None,
        inputs='{"args": [], "kwargs": {}}',
        authenticated_user=None,
        max_recovery_attempts=10,
    )


def step(function_id: int) -> StepRecord:
    now = now_epoch_ms()
    return StepRecord(
        function_id=function_id,
        function_name="tests.fencing.step",
        output=str(function_id),
        error=None,
        attempts=1,
        attempt_log=None,
        retry_due_at_epoch_ms=None,
        started_at_epoch_ms=now,
        completed_at_epoch_ms=now,
    )


def connections_to_the_database() -> int:
    with psycopg.connect(DATABASE_URL, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_many_executions_of_one_process_run_at_once_on_a_few_connections(
    stores: list[SystemStore],
) -> None:
    store = stores[0]
    executions = 24
    rows = [new_row() for _ in range(executions)]
    for row in rows:
        store.workflows.insert_workflow(row)
    baseline = connections_to_the_database()
    # Every execution must be claimed and inside its run at the same moment: with a
    # connection pinned per execution (pools of 2), the barrier would break.
    inside = threading.Barrier(executions, timeout=60)
    used: list[int] = []
    failures: list[BaseException] = []

    def run(row: NewWorkflow) -> None:
        try:
            with store.executions.claim(row.workflow_uuid, "tests") as execution:
                assert execution.claim.outcome == "claimed"
                execution.record_step(step(1))
                if inside.wait() == 0:
                    used.append(connections_to_the_database() - baseline - 1)
                execution.record_step(step(2))
                assert execution.complete("SUCCESS", output='"done"', error=None)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    # The fence's connection and the checkpoints' pool (2) at most.
    assert 1 <= used[0] <= 1 + POOL_SIZE
    for row in rows:
        assert store.workflows.get_outcome(row.workflow_uuid) == (
            row.name,
            "SUCCESS",
            '"done"',
            None,
        )
        assert [s.function_id for s in store.workflows.list_steps(row.workflow_uuid)] == [1, 2]


def test_a_second_execution_of_one_workflow_in_one_process_is_busy(
    stores: list[SystemStore],
) -> None:
    store, other = stores
    row = new_row()
    store.workflows.insert_workflow(row)
    with store.executions.claim(row.workflow_uuid, "tests") as first:
        assert first.claim.outcome == "claimed"
        # Session locks are re-entrant: the fence itself must say no.
        with store.executions.claim(row.workflow_uuid, "tests") as again:
            assert again.claim.outcome == "busy"
        with other.executions.claim(row.workflow_uuid, "tests") as elsewhere:
            assert elsewhere.claim.outcome == "busy"
        assert first.complete("SUCCESS", output="1", error=None)
    # Released: the next execution finds it finished.
    with store.executions.claim(row.workflow_uuid, "tests") as after:
        assert after.claim.outcome == "finished"


def test_an_execution_that_lost_its_fence_writes_nothing_once_another_owns_it(
    stores: list[SystemStore],
) -> None:
    zombie_store, owner_store = stores
    row = new_row()
    zombie_store.workflows.insert_workflow(row)
    with zombie_store.executions.claim(row.workflow_uuid, "worker-a") as zombie:
        assert zombie.claim.outcome == "claimed"
        zombie.record_step(step(1))
        # The zombie's fence connection dies (a network partition, say); its process
        # and its pooled connections live on.
        with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'celery_durable fence' AND datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_start = ("
                "  SELECT max(backend_start) FROM pg_stat_activity"
                "  WHERE application_name = 'celery_durable fence'"
                "  AND datname = current_database())"
            )
        with owner_store.executions.claim(row.workflow_uuid, "worker-b") as owner:
            assert owner.claim.outcome == "claimed"
            assert sorted(owner.claim.checkpoints) == [1]
            # The zombie carries on: its checkpoint and its outcome are refused.
            with pytest.raises(FenceLost):
                zombie.record_step(step(2))
            with pytest.raises(DBOSSystemDatabaseError):
                zombie.complete("SUCCESS", output='"zombie"', error=None)
            owner.record_step(step(2))
            assert owner.complete("SUCCESS", output='"owner"', error=None)
    assert owner_store.workflows.get_outcome(row.workflow_uuid) == (
        row.name,
        "SUCCESS",
        '"owner"',
        None,
    )
    steps = owner_store.workflows.list_steps(row.workflow_uuid)
    assert [(s.function_id, s.output) for s in steps] == [(1, "1"), (2, "2")]
    # The zombie's process claims again on a new fence connection (it is finished now).
    with zombie_store.executions.claim(row.workflow_uuid, "worker-a") as later:
        assert later.claim.outcome == "finished"


def test_a_fence_statement_interrupted_in_flight_drops_the_connection_and_its_locks(
    stores: list[SystemStore],
) -> None:
    store, other = stores
    row = new_row()
    store.workflows.insert_workflow(row)

    class SoftTimeLimit(Exception):
        pass

    def interrupt(signum: int, frame: Any) -> None:
        raise SoftTimeLimit

    with store.executions.claim(row.workflow_uuid, "tests") as execution:
        assert execution.claim.outcome == "claimed"
        # Celery's soft time limit raises in the task's thread from a signal handler,
        # here while a statement on the fence is in flight.
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(SoftTimeLimit):
                store.connections.fence.send(lambda: "sleeping", "SELECT pg_sleep(30)", {})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        # The fence's connection went (its statement cancelled, not left to run its
        # 30 s), with the lock: another process may claim the workflow (once the
        # server has ended the backend), and this execution's fence statements are
        # refused.
        deadline = time.monotonic() + 10
        while True:
            claim = other.executions.claim(row.workflow_uuid, "tests")
            owner = claim.__enter__()
            if owner.claim.outcome == "claimed" or time.monotonic() > deadline:
                break
            claim.__exit__(None, None, None)
            time.sleep(0.1)
        try:
            assert owner.claim.outcome == "claimed"
            with pytest.raises(FenceLost):
                execution.complete("SUCCESS", output='"stale"', error=None)
            assert owner.complete("SUCCESS", output='"owner"', error=None)
        finally:
            claim.__exit__(None, None, None)
    # The process's fence works again (a new connection).
    later = new_row()
    store.workflows.insert_workflow(later)
    with store.executions.claim(later.workflow_uuid, "tests") as again:
        assert again.claim.outcome == "claimed"
        assert again.complete("SUCCESS", output="1", error=None)


def terminate(pid: int) -> None:
    """Terminates one backend (as a PostgreSQL restart terminates all), and waits until
    its process is gone (the server runs on this machine): its client's socket then
    holds the server's goodbye and the end of the stream."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"backend {pid} did not exit"
        time.sleep(0.01)


def test_a_fence_whose_server_hung_up_is_replaced_before_a_statement_is_sent(
    stores: list[SystemStore],
) -> None:
    store = stores[0]
    old_row, new = new_row(), new_row()
    store.workflows.insert_workflow(old_row)
    store.workflows.insert_workflow(new)
    with store.executions.claim(old_row.workflow_uuid, "tests") as old:
        assert old.claim.outcome == "claimed"
        connection = store.connections.fence._connection
        assert connection is not None
        terminate(connection.info.backend_pid)
        sent: list[str] = []
        store.connections.statement_listeners.append(sent.append)
        # A new claim goes to a new fence connection at once (not a failed statement
        # on the dead one first, then a second sending)...
        with store.executions.claim(new.workflow_uuid, "tests") as fresh:
            assert fresh.claim.outcome == "claimed"
            assert len(sent) == 1
            assert fresh.complete("SUCCESS", output=None, error=None)
        # ...and the execution of the old connection learns it lost its fence.
        with pytest.raises(FenceLost):
            old.complete("SUCCESS", output=None, error=None)
    with store.executions.claim(old_row.workflow_uuid, "tests") as again:
        assert again.claim.outcome == "claimed"
        assert again.complete("SUCCESS", output=None, error=None)
