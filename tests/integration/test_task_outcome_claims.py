"""How PostgreSQL records a Celery task's outcome and claims the workflow it wakes
(``claim_after_task``, schema v19): what the in-memory store cannot show.

A parked workflow that nothing runs is woken and claimed by one update that leaves its
dispatch time alone (so that the row's update can stay on its page); one whose lock
another connection holds has its outcome recorded and is woken for its message, due at
once, as before.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import StepRecord
from celery_durable.store import Dispatch, NewWorkflow, ReportedOutcome, SystemStore
from tests.conftest import DATABASE_URL

NAME = "tests.task_outcome.workflow"


@pytest.fixture
def store(dbos: object) -> Iterator[SystemStore]:
    real = SystemStore(DATABASE_URL, pool_size=1)
    yield real
    real.dispose()


def parked_on_a_task(store: SystemStore, due: int) -> tuple[str, ReportedOutcome]:
    """A workflow parked until its task's callback, and that task's success."""
    workflow_id = f"task-outcome-{uuid.uuid4()}"
    store.workflows.insert_workflow(
        NewWorkflow(
            workflow_uuid=workflow_id,
            name=NAME,
            status="ENQUEUED",
            queue_name=None,
            inputs='{"args": [], "kwargs": {}}',
            authenticated_user=None,
            max_recovery_attempts=5,
            parent_workflow_id=None,
        )
    )
    task_id = f"{workflow_id}:task:1:1"
    now = now_epoch_ms()
    in_flight = StepRecord(
        function_id=1,
        function_name="tasks.add",
        output=None,
        error=None,
        attempts=1,
        attempt_log=None,
        retry_due_at_epoch_ms=None,
        started_at_epoch_ms=now,
        completed_at_epoch_ms=None,
        child_workflow_id=task_id,
        max_attempts=3,
    )
    with store.executions.claim(workflow_id, "a", generation=0) as execution:
        assert execution.reschedule(due_at_epoch_ms=due, parked=True, checkpoint=in_flight)
    return workflow_id, ReportedOutcome(function_id=1, task_id=task_id, output="2", error=None)


def row(workflow_id: str) -> tuple[int, int, bool, bool]:
    with psycopg.connect(DATABASE_URL) as connection:
        found = connection.execute(
            "SELECT next_dispatch_at_epoch_ms, dispatch_generation, execution_active, "
            "dispatch_parked FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
    assert found is not None
    return found


def test_a_workflow_nothing_runs_is_claimed_with_its_dispatch_time_left_alone(
    store: SystemStore,
) -> None:
    due = now_epoch_ms() + 3_600_000
    workflow_id, outcome = parked_on_a_task(store, due)
    with store.executions.claim(workflow_id, "b", reported=outcome) as execution:
        assert execution.claim.outcome == "claimed"
        assert row(workflow_id) == (due, 2, True, False)
        assert execution.claim.checkpoints[1].output == "2"


def test_a_parked_workflow_keeps_a_look_again_time_a_little_earlier_than_its_next(
    store: SystemStore,
) -> None:
    first_due = now_epoch_ms() + 3_600_000
    workflow_id, outcome = parked_on_a_task(store, first_due)
    with store.executions.claim(workflow_id, "b", reported=outcome) as execution:
        second = dataclasses.replace(
            execution.claim.checkpoints[1],
            function_id=2,
            output=None,
            completed_at_epoch_ms=None,
            child_workflow_id=f"{workflow_id}:task:2:1",
        )
        parked = execution.reschedule(due_at_epoch_ms=first_due + 5, parked=True, checkpoint=second)
        assert parked is not None and parked.due_at_epoch_ms == first_due + 5
    assert row(workflow_id)[0] == first_due  # 5 ms early: kept
    second_outcome = ReportedOutcome(
        function_id=2, task_id=f"{workflow_id}:task:2:1", output="3", error=None
    )
    with store.executions.claim(workflow_id, "b", reported=second_outcome) as execution:
        third = dataclasses.replace(second, function_id=3, child_workflow_id="t3")
        later = first_due + 120_000
        assert execution.reschedule(due_at_epoch_ms=later, parked=True, checkpoint=third)
    assert row(workflow_id)[0] == first_due + 120_000  # two minutes early: replaced


def test_a_workflow_locked_elsewhere_is_recorded_and_woken_for_its_message(
    store: SystemStore,
) -> None:
    workflow_id, outcome = parked_on_a_task(store, now_epoch_ms() + 3_600_000)
    with psycopg.connect(DATABASE_URL, autocommit=True) as elsewhere:
        elsewhere.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (workflow_id,))
        before = now_epoch_ms()
        with store.executions.claim(workflow_id, "b", reported=outcome) as execution:
            assert (execution.claim.outcome, execution.fenced) == ("busy", False)
            assert execution.claim.woken == Dispatch(name=NAME, queue_name=None, generation=2)
        next_dispatch, generation, active, parked = row(workflow_id)
        assert (generation, active, parked) == (2, False, False)
        assert before <= next_dispatch <= now_epoch_ms()  # due at once: the sweep's if lost
        elsewhere.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (workflow_id,))
    with store.executions.claim(workflow_id, "b", generation=2) as woken:
        assert woken.claim.outcome == "claimed"
        step = woken.claim.checkpoints[1]
        assert (step.output, step.completed) == ("2", True)


def test_a_workflow_of_another_version_is_recorded_not_claimed(store: SystemStore) -> None:
    workflow_id, outcome = parked_on_a_task(store, now_epoch_ms() + 3_600_000)
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute(
            "UPDATE celery_durable.workflow_status SET application_version = 'v-old' "
            "WHERE workflow_uuid = %s",
            (workflow_id,),
        )
    with store.executions.claim(
        workflow_id, "b", reported=outcome, app_version="v-new"
    ) as execution:
        assert (execution.claim.outcome, execution.fenced) == ("version", False)
        assert execution.claim.woken == Dispatch(name=NAME, queue_name=None, generation=2)
    assert row(workflow_id)[1:3] == (2, False)
