"""Group commit: checkpoints of a process's executions that wait at the same moment share
one statement, and each still gets its own outcome.

Store-level tests against the real PostgreSQL (``SystemStore`` stands for one worker
process). To put two checkpoints in one batch for certain, a test holds the only
connection of the statement pool while both queue, then lets go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from celery_durable.error import DBOSSystemDatabaseError
from celery_durable.store import SystemStore
from celery_durable.store.execution import WorkflowExecution
from celery_durable.store.fence import FenceLost
from tests.conftest import DATABASE_URL
from tests.integration.test_fencing import new_row, step, terminate


@pytest.fixture
def store(dbos: Any) -> Iterator[SystemStore]:
    """One "process" whose statement pool has a single connection."""
    made = SystemStore(DATABASE_URL, pool_size=1)
    yield made
    made.dispose()


def statements_sent(store: SystemStore) -> list[str]:
    sent: list[str] = []
    store.connections.statement_listeners.append(
        lambda sql: sent.append(" ".join(sql.split())[:20])
    )
    return sent


def in_threads(*calls: Callable[[], Any]) -> list[BaseException | None]:
    """Runs each call in a thread of its own; what each raised (None: nothing)."""
    raised: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            calls[index]()
        except BaseException as error:
            raised[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return raised


def queued_together(store: SystemStore, *calls: Callable[[], Any]) -> list[BaseException | None]:
    """Runs ``calls`` (each sends one checkpoint) while the pool's only connection is
    lent elsewhere, so that they queue; then lets go of it: one batch carries them."""
    committer = store.connections.checkpoints
    raised: list[BaseException | None] = []
    with store.connections.statements.cursor(lambda: "holding the connection"):
        runner = threading.Thread(target=lambda: raised.extend(in_threads(*calls)))
        runner.start()
        deadline = time.monotonic() + 30
        while len(committer._queued) < len(calls):
            assert time.monotonic() < deadline, "the checkpoints never queued"
            time.sleep(0.01)
    runner.join(timeout=60)
    return raised


def claimed(store: SystemStore, count: int) -> tuple[list[WorkflowExecution], list[Any]]:
    """``count`` workflows, each claimed by an execution of ``store`` (and the context
    managers to exit)."""
    executions, managers = [], []
    for _ in range(count):
        row = new_row()
        store.workflows.insert_workflow(row)
        manager = store.executions.claim(row.workflow_uuid, "tests")
        execution = manager.__enter__()
        assert execution.claim.outcome == "claimed"
        executions.append(execution)
        managers.append(manager)
    return executions, managers


def test_a_lone_checkpoint_goes_at_once_in_the_one_row_statement(store: SystemStore) -> None:
    sent = statements_sent(store)
    (execution,), managers = claimed(store, 1)
    sent.clear()
    execution.record_step(step(1))
    assert sent == ["WITH owner AS ( SELE"]
    assert store.connections.checkpoints.batches == 0
    assert execution.complete("SUCCESS", output="1", error=None)
    managers[0].__exit__(None, None, None)


def test_checkpoints_that_queue_together_share_one_statement_and_each_is_recorded(
    store: SystemStore,
) -> None:
    executions, managers = claimed(store, 6)
    sent = statements_sent(store)
    # Six executions' first steps, and a second step of the first execution (steps of
    # one async workflow run at once under asyncio.gather).
    raised = queued_together(
        store,
        *(lambda e=e: e.record_step(step(1)) for e in executions),
        lambda: executions[0].record_step(step(2)),
    )
    assert raised == [None] * 7
    assert sent == ["WITH batch AS ( SELE"]  # one statement for the seven
    assert store.connections.checkpoints.batches == 1
    for index, (execution, manager) in enumerate(zip(executions, managers, strict=True)):
        expected = [(1, "1"), (2, "2")] if index == 0 else [(1, "1")]
        steps = store.workflows.list_steps(execution.workflow_uuid)
        assert [(s.function_id, s.output) for s in steps] == expected
        # A checkpoint already complete is not written again (None), batch or not.
        assert execution.record_step(step(1)) is None
        assert execution.complete("SUCCESS", output="1", error=None)
        manager.__exit__(None, None, None)


def test_many_executions_at_once_on_one_connection_batch_and_lose_nothing(
    store: SystemStore,
) -> None:
    executions, managers = claimed(store, 32)
    sent = statements_sent(store)

    def run(execution: WorkflowExecution) -> None:
        for function_id in range(1, 6):
            assert execution.record_step(step(function_id)) == "PENDING"

    assert in_threads(*(lambda e=e: run(e) for e in executions)) == [None] * 32
    # 160 checkpoints on one connection, threads arriving while it is busy: fewer
    # statements than checkpoints, each checkpoint recorded once.
    assert len(sent) < 160
    assert store.connections.checkpoints.batches >= 1
    for execution, manager in zip(executions, managers, strict=True):
        steps = store.workflows.list_steps(execution.workflow_uuid)
        assert [(s.function_id, s.output) for s in steps] == [(i, str(i)) for i in range(1, 6)]
        assert execution.complete("SUCCESS", output="5", error=None)
        manager.__exit__(None, None, None)


def test_in_a_batch_a_checkpoint_of_an_execution_that_lost_its_workflow_writes_nothing(
    store: SystemStore,
) -> None:
    (zombie, owner), managers = claimed(store, 2)
    # Another execution claims the zombie's workflow (a new owner token): its
    # checkpoint must be refused, the batch's other checkpoint written.
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute(
            "UPDATE celery_durable.workflow_status SET owner_token = owner_token + 1 "
            "WHERE workflow_uuid = %s",
            (zombie.workflow_uuid,),
        )
    raised = queued_together(
        store, lambda: zombie.record_step(step(1)), lambda: owner.record_step(step(1))
    )
    assert isinstance(raised[0], FenceLost)
    assert raised[1] is None
    assert store.connections.checkpoints.batches == 1
    assert store.workflows.list_steps(zombie.workflow_uuid) == []
    assert [s.function_id for s in store.workflows.list_steps(owner.workflow_uuid)] == [1]
    for manager in managers:
        manager.__exit__(None, None, None)


def test_a_bad_checkpoint_in_a_batch_fails_alone(store: SystemStore) -> None:
    (bad, good), managers = claimed(store, 2)
    nameless = step(1)
    object.__setattr__(nameless, "function_name", None)  # violates NOT NULL
    raised = queued_together(
        store, lambda: bad.record_step(nameless), lambda: good.record_step(step(1))
    )
    assert isinstance(raised[0], DBOSSystemDatabaseError)
    assert "recording step 1 of" in str(raised[0])
    assert raised[1] is None
    assert store.workflows.list_steps(bad.workflow_uuid) == []
    assert [s.function_id for s in store.workflows.list_steps(good.workflow_uuid)] == [1]
    # The connection is fine: the next checkpoint goes through.
    assert bad.record_step(step(1)) == "PENDING"
    for manager in managers:
        manager.__exit__(None, None, None)


def test_a_connection_whose_server_hung_up_is_not_lent(store: SystemStore) -> None:
    (execution,), managers = claimed(store, 1)
    execution.record_step(step(1))  # the pool's connection is open
    idle = store.connections.statements._idle[0][0]
    terminate(idle.info.backend_pid)  # as a PostgreSQL restart does to every connection
    sent = statements_sent(store)
    # The dead connection is found out before anything is sent on it: the checkpoint
    # goes once, on a new connection.
    assert execution.record_step(step(2)) == "PENDING"
    assert sent == ["WITH owner AS ( SELE"]
    assert idle.closed
    assert [s.function_id for s in store.workflows.list_steps(execution.workflow_uuid)] == [1, 2]
    assert execution.complete("SUCCESS", output=None, error=None)
    managers[0].__exit__(None, None, None)


def test_a_checkpoint_whose_connection_is_lost_under_it_is_sent_once_more(
    store: SystemStore,
) -> None:
    (execution,), managers = claimed(store, 1)
    execution.record_step(step(1))
    pid = store.connections.statements._idle[0][0].info.backend_pid
    sent = statements_sent(store)
    raised: list[BaseException | None] = []
    with psycopg.connect(DATABASE_URL) as blocker:
        # The workflow's row locked: the checkpoint's statement waits on the server...
        blocker.execute(
            "SELECT 1 FROM celery_durable.workflow_status WHERE workflow_uuid = %s FOR UPDATE",
            (execution.workflow_uuid,),
        )
        recording = threading.Thread(
            target=lambda: raised.extend(in_threads(lambda: execution.record_step(step(2))))
        )
        recording.start()
        deadline = time.monotonic() + 30
        while not blocker.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)
        ).fetchone():
            assert time.monotonic() < deadline, "the checkpoint never waited"
            time.sleep(0.01)
        # ...when its connection is lost (its outcome unknown to the execution).
        terminate(pid)
        deadline = time.monotonic() + 30
        while len(sent) < 2:
            assert time.monotonic() < deadline, "the checkpoint was not sent again"
            time.sleep(0.01)
    recording.join(timeout=60)
    # Sent again on a new connection, it is recorded: the step does not run again.
    assert raised == [None]
    assert sent == ["WITH owner AS ( SELE"] * 2
    assert [s.function_id for s in store.workflows.list_steps(execution.workflow_uuid)] == [1, 2]
    assert execution.complete("SUCCESS", output=None, error=None)
    managers[0].__exit__(None, None, None)


def test_a_connection_whose_statement_was_interrupted_is_not_lent_again(
    store: SystemStore,
) -> None:
    class Interrupted(BaseException):
        """As a time limit or gevent's Timeout would interrupt a statement's wait."""

    with (
        pytest.raises(Interrupted),
        store.connections.statements.cursor(lambda: "testing") as cursor,
    ):
        cursor.connection.pgconn.send_query(b"SELECT pg_sleep(0.5)")
        raise Interrupted
    # The connection with a statement still in flight was closed: the next checkpoint
    # gets a fresh one instead of "another command is already in progress".
    (execution,), managers = claimed(store, 1)
    assert execution.record_step(step(1)) == "PENDING"
    assert execution.complete("SUCCESS", output="1", error=None)
    managers[0].__exit__(None, None, None)
