"""The SQL statement budget of a workflow, counted with SQLAlchemy's events."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event

from bench.counting import statement_kind as kind
from celery_durable import DBOS, Queue, SetWorkflowID
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions
from celery_durable.store import NewWorkflow, ReportedOutcome, SystemStore
from tests.conftest import StatementCounter


@DBOS.step()
def noop(i: int) -> int:
    return i


@DBOS.workflow()
def ten_steps() -> int:
    return sum(noop(i) for i in range(10))


UNCONSUMED = Queue("budget-unconsumed")


def test_a_ten_step_workflow_costs_one_statement_per_step(
    count_statements: StatementCounter,
) -> None:
    workflow_id = f"budget-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert ten_steps() == 45
    assert [kind(s) for s in count_statements.statements] == [
        # A direct call: the workflow's row, the fence, its inputs and every
        # checkpoint, in one round trip.
        "insert + claim",
        *["insert step"] * 10,  # one per step
        "complete",  # the outcome, releasing the fence in the same statement
    ]


def test_an_enqueued_workflow_costs_the_same_on_the_worker(
    count_statements: StatementCounter,
) -> None:
    # A queue no worker consumes: the session's worker must not run it first.
    handle = UNCONSUMED.enqueue(ten_steps)
    assert [kind(s) for s in count_statements.statements] == ["insert workflow"]
    count_statements.statements.clear()
    # What a worker does with the message, run here so that it can be counted.
    options = RunOptions(inline_retries=False)
    assert DBOS._service().runtime.process.engine().run(handle.workflow_id, options).output == 45
    assert [kind(s) for s in count_statements.statements] == [
        "claim",
        *["insert step"] * 10,
        "complete",
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
    assert [kind(s) for s in count_statements.statements] == ["insert + claim"]


def test_with_asynchronous_checkpoints_a_direct_call_still_creates_its_row_synchronously(
    dbos: type[DBOS],
) -> None:
    from tests.conftest import DATABASE_URL

    store = SystemStore(DATABASE_URL, pool_size=1, synchronous_checkpoints=False)
    synchronous, executions = StatementCounter(), StatementCounter()
    event.listen(store.connections.engine, "before_cursor_execute", synchronous)
    # Executions' statements (the claim on the fence connection, checkpoints on pooled
    # ones) go to the driver directly: the store reports them.
    store.connections.statement_listeners.append(executions.record)
    row = NewWorkflow(
        workflow_uuid=f"budget-{uuid.uuid4()}",
        name="tests.budget.async_call",
        status="PENDING",
        queue_name=None,
        inputs='{"args": [], "kwargs": {}}',
        authenticated_user=None,
        max_recovery_attempts=3,
    )
    try:
        with store.executions.claim(row.workflow_uuid, "tests", new=row) as execution:
            assert execution.claim.outcome == "claimed"
            execution.complete("SUCCESS", output="45", error=None)
        # The row on a synchronous connection first, then the usual claim.
        assert [kind(s) for s in synchronous.statements] == ["insert workflow"]
        assert [kind(s) for s in executions.statements] == ["claim", "complete"]
        assert store.workflows.get_outcome(row.workflow_uuid) == (row.name, "SUCCESS", "45", None)
    finally:
        store.dispose()


@pytest.mark.parametrize(("synchronous", "expected"), [(True, "on"), (False, "off")])
def test_asynchronous_commit_is_opt_in_and_only_for_executions(
    dbos: type[DBOS], synchronous: bool, expected: str
) -> None:
    from tests.conftest import DATABASE_URL

    store = SystemStore(DATABASE_URL, pool_size=1, synchronous_checkpoints=synchronous)
    try:
        with store.executions.claim("no-such-workflow", "tests") as execution:
            assert execution.claim.outcome == "missing"
        # The fence connection (claims, outcomes) and the checkpoints' pool.
        fence_setting = store.connections.fence.send(
            lambda: "showing", "SHOW synchronous_commit", {}
        )[1][0]
        with store.connections.statements.cursor(lambda: "showing") as cursor:
            pooled_setting = cursor.execute("SHOW synchronous_commit").fetchone()[0]
        assert (fence_setting, pooled_setting) == (expected, expected)
        # Creating workflows always commits synchronously.
        with store.connections.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        store.dispose()


# -- messages (issue 13): a recv that finds its message costs one round trip -----------------


@DBOS.workflow()
def budget_receives() -> str:
    return str(DBOS.recv("budget", timeout_seconds=60))


@DBOS.workflow()
def budget_sends(destination: str) -> None:
    DBOS.send(destination, "hello", "budget")


def messaging_kind(statement: str) -> str:
    if "send_message(" in statement:
        return "send"  # the message, the wake-up and (in a workflow) its checkpoint
    if "'DBOS.recv'" in statement:
        return "recv"  # the deadline, the oldest message consumed and checkpointed
    return kind(statement)


def test_a_recv_that_finds_its_message_costs_one_statement(
    count_statements: StatementCounter,
) -> None:
    handle = UNCONSUMED.enqueue(budget_receives)
    DBOS.send(handle.workflow_id, "waiting", "budget")
    # Sending from outside a workflow: one statement.
    assert [messaging_kind(s) for s in count_statements.statements] == ["insert workflow", "send"]
    count_statements.statements.clear()
    options = RunOptions(inline_retries=False)
    assert (
        DBOS._service().runtime.process.engine().run(handle.workflow_id, options).output
        == "waiting"
    )
    # The recv is its own checkpoint: no round trip beyond it.
    assert [messaging_kind(s) for s in count_statements.statements] == [
        "claim",
        "recv",
        "complete",
    ]


def test_a_send_in_a_workflow_costs_one_statement(count_statements: StatementCounter) -> None:
    destination = UNCONSUMED.enqueue(budget_receives).workflow_id
    handle = UNCONSUMED.enqueue(budget_sends, destination)
    count_statements.statements.clear()
    DBOS._service().runtime.process.engine().run(
        handle.workflow_id, RunOptions(inline_retries=False)
    )
    # The message and the send's checkpoint commit in one statement.
    assert [messaging_kind(s) for s in count_statements.statements] == [
        "claim",
        "send",
        "complete",
    ]
    count_statements.statements.clear()
    with SetWorkflowID(f"budget-{uuid.uuid4()}"):
        budget_sends(destination)
    assert [messaging_kind(s) for s in count_statements.statements] == [
        "insert + claim",
        "send",
        "complete",
    ]


@DBOS.workflow()
def budget_runs_a_task() -> int:
    # A task nobody consumes: the test reports its outcome itself, as our callback does.
    signature = DBOS._service().runtime.process.celery.signature(
        "budget.absent_task", args=(1,), queue="budget-unconsumed-tasks"
    )
    return int(DBOS.run_task(signature))


def task_kind(statement: str) -> str:
    if "claim_after_task(" in statement:
        return "record task outcome + claim"
    if statement.startswith("WITH caller AS") and "operation_outputs AS o" in statement:
        return "record task outcome"  # the callback: the outcome and the wake-up
    if "INSERT INTO celery_durable.operation_outputs" in statement and (
        "UPDATE celery_durable.workflow_status" in statement
    ):
        return "record in flight + park"
    if (
        statement.startswith("UPDATE celery_durable.workflow_status")
        and "execution_active" in (statement.split("SET", 1)[1][:40])
    ):
        return "reschedule"
    return kind(statement)


def test_a_celery_task_call_costs_one_statement_to_send_and_one_to_record_and_claim(
    count_statements: StatementCounter,
) -> None:
    handle = UNCONSUMED.enqueue(budget_runs_a_task)
    count_statements.statements.clear()
    service = DBOS._service()
    engine = service.runtime.process.engine()
    with pytest.raises(RescheduleWorkflow):
        engine.run(handle.workflow_id, RunOptions(inline_retries=False))
    # The attempt recorded in flight and the workflow parked in one statement (the task
    # is sent once it has committed).
    assert [task_kind(s) for s in count_statements.statements] == [
        "claim",
        "record in flight + park",
    ]
    count_statements.statements.clear()
    task_id = f"{handle.workflow_id}:task:1:1"
    output = service.runtime.process.serializer.dumps(7)
    # The callback: the outcome recorded and the woken workflow claimed in one statement,
    # then the workflow runs on to its end.
    reported = ReportedOutcome(function_id=1, task_id=task_id, output=output, error=None)
    result = engine.run(handle.workflow_id, RunOptions(inline_retries=False, reported=reported))
    assert result.output == 7
    assert [task_kind(s) for s in count_statements.statements] == [
        "record task outcome + claim",
        "complete",
    ]
    count_statements.statements.clear()
    # A duplicate callback records nothing.
    duplicate = ReportedOutcome(function_id=1, task_id=task_id, output="8", error=None)
    result = engine.run(handle.workflow_id, RunOptions(inline_retries=False, reported=duplicate))
    assert result.outcome == "unrecorded"
    assert [task_kind(s) for s in count_statements.statements] == ["record task outcome + claim"]
