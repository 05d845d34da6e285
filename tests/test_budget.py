"""The SQL statement budget of a workflow, counted with SQLAlchemy's events."""

from __future__ import annotations

import uuid

import pytest

from celery_durable import DBOS, SetWorkflowID
from celery_durable.store import SystemStore
from tests.conftest import StatementCounter


def kind(statement: str) -> str:
    if "claim_workflow(" in statement:
        return "claim"
    if "INSERT INTO celery_durable.workflow_status" in statement:
        return "insert workflow"
    if statement.startswith("INSERT INTO celery_durable.operation_outputs"):
        return "insert step"
    if statement.startswith("UPDATE celery_durable.workflow_status SET status"):
        return "complete"
    if statement.startswith("SELECT name, status, output, error"):
        return "read outcome"
    return statement


@DBOS.step()
def noop(i: int) -> int:
    return i


@DBOS.workflow()
def ten_steps() -> int:
    return sum(noop(i) for i in range(10))


def test_a_ten_step_workflow_costs_one_statement_per_step(
    count_statements: StatementCounter,
) -> None:
    workflow_id = f"budget-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert ten_steps() == 45
    assert [kind(s) for s in count_statements.statements] == [
        "insert workflow",  # start: the workflow's row
        "claim",  # fence + inputs + every checkpoint, one round trip
        *["insert step"] * 10,  # one per step
        "complete",  # the outcome, releasing the fence in the same statement
    ]


def test_calling_a_finished_workflow_costs_one_statement(
    count_statements: StatementCounter,
) -> None:
    workflow_id = f"budget-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        ten_steps()
    count_statements.statements.clear()
    with SetWorkflowID(workflow_id):
        assert ten_steps() == 45
    # The insert finds the finished row and returns its outcome: nothing else runs.
    assert [kind(s) for s in count_statements.statements] == ["insert workflow"]


@pytest.mark.parametrize(("synchronous", "expected"), [(True, "on"), (False, "off")])
def test_asynchronous_commit_is_opt_in_and_only_for_executions(
    dbos: type[DBOS], synchronous: bool, expected: str
) -> None:
    from tests.conftest import DATABASE_URL

    store = SystemStore(DATABASE_URL, pool_size=1, synchronous_checkpoints=synchronous)
    try:
        with store.execute_workflow("no-such-workflow", "tests") as execution:
            setting = execution._driver.execute("SHOW synchronous_commit").fetchone()[0]
        assert setting == expected
        # Creating workflows always commits synchronously.
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        store.dispose()
