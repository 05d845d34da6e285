"""The step specification, on workflows called directly (in-process, durable).

Every rule is checked with exact invocation counts against the real system database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import (
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSUnexpectedStepError,
    RecordedError,
)
from celery_durable.integration.runtime import Runtime

calls: Counter[str] = Counter()
seen: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _reset(dbos: type[DBOS]) -> None:
    calls.clear()
    seen.clear()


def new_id() -> str:
    return f"inproc-{uuid.uuid4()}"


class SimulatedCrash(BaseException):
    """Stands in for a process dying mid-workflow: nothing catches it."""


class PaymentDeclined(Exception):
    def __init__(self, order_id: str, amount: int) -> None:
        super().__init__(order_id, amount)
        self.order_id = order_id
        self.amount = amount


class KeywordOnlyError(Exception):
    """Cannot be rebuilt from its args: replays as RecordedError."""

    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")


# -- retries -------------------------------------------------------------------------


@DBOS.step(max_attempts=4, interval_seconds=0.05, backoff_rate=2.0)
def fails_twice(value: int) -> int:
    calls["fails_twice"] += 1
    if calls["fails_twice"] <= 2:
        raise ConnectionError(f"attempt {calls['fails_twice']}")
    return value * 2


@DBOS.step(max_attempts=3, interval_seconds=0.01)
def always_fails() -> None:
    calls["always_fails"] += 1
    raise ValueError(f"failure {calls['always_fails']}")


@DBOS.step(retries_allowed=False)
def no_retries() -> None:
    calls["no_retries"] += 1
    raise PaymentDeclined("o-1", 5)


@DBOS.step(
    max_attempts=5, interval_seconds=0.01, should_retry=lambda e: isinstance(e, TimeoutError)
)
def selective() -> None:
    calls["selective"] += 1
    if calls["selective"] == 1:
        raise TimeoutError("transient")
    raise PermissionError("permanent")


@DBOS.workflow()
def retrying_workflow(value: int) -> int:
    return fails_twice(value)


@DBOS.workflow()
def compensating_workflow() -> str:
    try:
        always_fails()
    except DBOSMaxStepRetriesExceeded as error:
        seen["error"] = error
        return "compensated"
    return "unreachable"


@DBOS.workflow()
def no_retry_workflow() -> None:
    no_retries()


@DBOS.workflow()
def selective_workflow() -> None:
    selective()


def test_a_step_is_retried_until_it_succeeds() -> None:
    assert retrying_workflow(21) == 42
    assert calls["fails_twice"] == 3


def test_exhausted_attempts_raise_max_step_retries_exceeded_at_the_call_site() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert compensating_workflow() == "compensated"
    assert calls["always_fails"] == 3
    error = seen["error"]
    assert str(error) == "DBOS Error 7: Step always_fails has exceeded its maximum of 3 retries"
    assert error.step_name == "always_fails"
    assert error.max_retries == 3
    assert [str(e) for e in error.errors] == ["failure 1", "failure 2", "failure 3"]
    assert all(isinstance(e, ValueError) for e in error.errors)
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert step["attempts"] == 3
    assert isinstance(step["error"], DBOSMaxStepRetriesExceeded)
    assert [str(a["error"]) for a in step["attempt_history"]] == [
        "failure 1",
        "failure 2",
        "failure 3",
    ]


def test_retries_allowed_false_raises_the_steps_own_error_at_once() -> None:
    with pytest.raises(PaymentDeclined) as raised:
        no_retry_workflow()
    assert raised.value.order_id == "o-1" and raised.value.amount == 5
    assert calls["no_retries"] == 1


def test_should_retry_false_raises_the_steps_own_error_at_once() -> None:
    with pytest.raises(PermissionError, match="permanent"):
        selective_workflow()
    assert calls["selective"] == 2


async def only_timeouts(error: BaseException) -> bool:
    await asyncio.sleep(0)  # a validator that really awaits
    return isinstance(error, TimeoutError)


@DBOS.step(max_attempts=5, interval_seconds=0.01, should_retry=only_timeouts)
async def selective_async() -> None:
    calls["selective_async"] += 1
    if calls["selective_async"] == 1:
        raise TimeoutError("transient")
    raise PermissionError("permanent")


@DBOS.workflow()
async def selective_async_workflow() -> None:
    await selective_async()


@DBOS.step(max_attempts=2, interval_seconds=0, should_retry=only_timeouts)
def sync_with_an_async_validator() -> None:
    calls["sync_with_an_async_validator"] += 1


@DBOS.workflow()
def calls_sync_with_an_async_validator() -> None:
    sync_with_an_async_validator()


def test_an_async_validator_is_awaited_for_an_async_step_and_refused_for_a_sync_one() -> None:
    # Awaited: False ends the retries with the step's own error (True retried once).
    with pytest.raises(PermissionError, match="permanent"):
        asyncio.run(selective_async_workflow())
    assert calls["selective_async"] == 2
    # A sync step cannot await it: refused when called, before any attempt (as DBOS).
    with pytest.raises(DBOSException, match="sync but should_retry is async"):
        calls_sync_with_an_async_validator()
    assert calls["sync_with_an_async_validator"] == 0


def test_a_step_outside_a_workflow_retries_in_process() -> None:
    assert fails_twice(5) == 10
    assert calls["fails_twice"] == 3
    with pytest.raises(DBOSMaxStepRetriesExceeded) as raised:
        always_fails()
    assert calls["always_fails"] == 3
    assert len(raised.value.errors) == 3


@DBOS.step(max_attempts=3, interval_seconds=0.01)
def inner_step() -> None:
    calls["inner"] += 1
    raise KeyError("inner")


@DBOS.step(max_attempts=2, interval_seconds=0.01)
def outer_step() -> str:
    calls["outer"] += 1
    try:
        inner_step()
    except KeyError:
        return "inner raised its own error once"
    return "unreachable"


@DBOS.workflow()
def nested_steps_workflow() -> str:
    return outer_step()


def test_a_step_inside_a_step_is_a_plain_call() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert nested_steps_workflow() == "inner raised its own error once"
    assert calls == Counter({"outer": 1, "inner": 1})
    assert [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)] == ["outer_step"]


# -- replay --------------------------------------------------------------------------

crash_at: dict[str, bool] = {}


@DBOS.step()
def record_side_effect(name: str) -> str:
    calls[name] += 1
    return f"{name}-done"


@DBOS.step()
def maybe_crash() -> None:
    if crash_at.pop("now", False):
        raise SimulatedCrash()


@DBOS.workflow()
def interrupted_workflow() -> list[str]:
    first = record_side_effect("first")
    maybe_crash()
    second = record_side_effect("second")
    return [first, second]


def test_replay_after_an_interruption_does_not_rerun_completed_steps() -> None:
    workflow_id = new_id()
    crash_at["now"] = True
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        interrupted_workflow()
    assert DBOS.retrieve_workflow(workflow_id).get_status().status == "PENDING"
    assert calls == Counter({"first": 1})
    with SetWorkflowID(workflow_id):
        assert interrupted_workflow() == ["first-done", "second-done"]
    assert calls == Counter({"first": 1, "second": 1})
    # Finished: a third call returns the recorded result and runs nothing.
    with SetWorkflowID(workflow_id):
        assert interrupted_workflow() == ["first-done", "second-done"]
    assert calls == Counter({"first": 1, "second": 1})


@DBOS.workflow()
def catches_a_recorded_error() -> str:
    try:
        no_retries()
    except PaymentDeclined as error:
        outcome = f"declined {error.order_id} {error.amount}"
    maybe_crash()
    return outcome


def test_a_recorded_error_is_reraised_as_its_own_class_without_running_the_step() -> None:
    workflow_id = new_id()
    crash_at["now"] = True
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        catches_a_recorded_error()
    with SetWorkflowID(workflow_id):
        assert catches_a_recorded_error() == "declined o-1 5"
    assert calls["no_retries"] == 1


@DBOS.step(retries_allowed=False)
def raises_keyword_only() -> None:
    raise KeywordOnlyError(code=7)


@DBOS.workflow()
def unrebuildable_error_workflow() -> None:
    raises_keyword_only()


def test_an_error_that_cannot_be_rebuilt_replays_as_recorded_error() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id), pytest.raises(KeywordOnlyError):
        unrebuildable_error_workflow()
    with pytest.raises(RecordedError) as raised:
        DBOS.retrieve_workflow(workflow_id).get_result()
    assert raised.value.type_name == f"{__name__}:KeywordOnlyError"
    assert raised.value.original_message == "code 7"


branch: dict[str, str] = {}


@DBOS.step()
def step_a() -> str:
    return "a"


@DBOS.step()
def step_b() -> str:
    return "b"


@DBOS.workflow()
def nondeterministic_workflow() -> str:
    result = step_a() if branch.get("take") == "a" else step_b()
    maybe_crash()
    return result


def test_a_changed_step_name_on_replay_is_a_clear_nondeterminism_error() -> None:
    workflow_id = new_id()
    branch["take"] = "a"
    crash_at["now"] = True
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        nondeterministic_workflow()
    branch["take"] = "b"
    with SetWorkflowID(workflow_id), pytest.raises(DBOSUnexpectedStepError) as raised:
        nondeterministic_workflow()
    message = str(raised.value)
    assert f"workflow {workflow_id} step 1" in message
    assert "function step_a was recorded when step_b was expected" in message


# -- context -------------------------------------------------------------------------


@DBOS.step(max_attempts=3, interval_seconds=0.01)
def contextual_step(item_id: str) -> dict[str, Any]:
    ctx = DBOS.get_context()
    assert ctx is not None
    status = DBOS.step_status
    assert status is not None
    DBOS.logger.info("Processing item %s in step %s", item_id, ctx.name)
    if ctx.attempt == 1:
        raise TimeoutError("first attempt fails")
    return {
        "name": ctx.name,
        "workflow_id": ctx.workflow_id,
        "step_id": ctx.step_id,
        "attempt": ctx.attempt,
        "max_attempts": ctx.max_attempts,
        "user": ctx.authenticated_user,
        "status": (status.step_id, status.current_attempt, status.max_attempts),
        "dbos_step_id": DBOS.step_id,
        "dbos_workflow_id": DBOS.workflow_id,
    }


@DBOS.workflow(name="contextual")
def contextual_workflow() -> dict[str, Any]:
    record_side_effect("before")
    seen["outside_step"] = (DBOS.workflow_id, DBOS.step_id, DBOS.step_status)
    seen["workflow_context"] = DBOS.get_context()
    return contextual_step("item-9")


def test_context_inside_and_outside_steps(caplog: pytest.LogCaptureFixture) -> None:
    workflow_id = new_id()
    caplog.set_level(logging.INFO, logger="dbos")
    with SetWorkflowID(workflow_id):
        result = contextual_workflow()
    assert result == {
        "name": "contextual_step",
        "workflow_id": workflow_id,
        "step_id": 2,  # the second operation (DBOS numbers them from 1)
        "attempt": 2,
        "max_attempts": 3,
        "user": None,
        "status": (2, 1, 3),
        "dbos_step_id": 2,
        "dbos_workflow_id": workflow_id,
    }
    assert seen["outside_step"] == (workflow_id, None, None)
    assert seen["workflow_context"].name == "contextual"
    assert DBOS.workflow_id is None and DBOS.step_id is None and DBOS.get_context() is None
    records = [r for r in caplog.records if r.name == "dbos"]
    assert records and all(r.workflow_id == workflow_id for r in records)  # type: ignore[attr-defined]
    assert {r.step_name for r in records} == {"contextual_step"}  # type: ignore[attr-defined]


# -- identity and inputs -------------------------------------------------------------


def test_set_workflow_id_runs_the_body_once() -> None:
    workflow_id = new_id()
    for _ in range(3):
        with SetWorkflowID(workflow_id):
            assert interrupted_workflow() == ["first-done", "second-done"]
    assert calls == Counter({"first": 1, "second": 1})


def test_reusing_an_id_for_another_workflow_is_a_conflict() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        result = retrying_workflow(1)
    with SetWorkflowID(workflow_id), pytest.raises(DBOSException, match="Conflicting workflow"):
        interrupted_workflow()
    # Nothing ran and nothing changed.
    assert calls["first"] == 0
    assert DBOS.retrieve_workflow(workflow_id).get_status().status == "SUCCESS"
    with SetWorkflowID(workflow_id):
        assert retrying_workflow(1) == result


@DBOS.step()
def slow_side_effect(name: str) -> str:
    calls[name] += 1
    started.set()
    time.sleep(0.5)
    return f"{name}-done"


@DBOS.workflow()
def slow_workflow(name: str) -> str:
    return slow_side_effect(name)


started = threading.Event()


def test_two_direct_calls_of_one_id_at_once_run_it_once() -> None:
    workflow_id = new_id()
    started.clear()
    results: list[str] = []

    def call() -> None:
        with SetWorkflowID(workflow_id):
            results.append(slow_workflow("slow"))

    first = threading.Thread(target=call)
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=call)  # its row exists and is being executed
    second.start()
    first.join(30)
    second.join(30)
    assert results == ["slow-done", "slow-done"]
    assert calls["slow"] == 1


# -- inspection ----------------------------------------------------------------------


def test_list_and_retrieve_workflows() -> None:
    import datetime as dt

    from celery_durable.error import DBOSNonExistentWorkflowError

    before = dt.datetime.now(dt.UTC)
    ids = [new_id() for _ in range(3)]
    for workflow_id in ids:
        with SetWorkflowID(workflow_id):
            retrying_workflow(2)
        calls.clear()
    listed = DBOS.list_workflows(workflow_ids=ids)
    assert [w.workflow_id for w in listed] == ids
    assert {(w.name, w.status, w.output) for w in listed} == {("retrying_workflow", "SUCCESS", 4)}
    assert listed[0].input == {"args": [2], "kwargs": {}}
    assert listed[0].created_at <= listed[0].updated_at
    newest = DBOS.list_workflows(
        name="retrying_workflow", start_time=before.isoformat(), sort_desc=True, limit=2
    )
    assert [w.workflow_id for w in newest] == ids[:0:-1]
    assert DBOS.list_workflows(workflow_ids=ids, status="ERROR") == []
    status = DBOS.retrieve_workflow(ids[0]).get_status()
    assert status.status == "SUCCESS" and status.max_recovery_attempts == 100
    with pytest.raises(DBOSNonExistentWorkflowError, match="does not exist"):
        DBOS.retrieve_workflow("no-such-workflow")


# -- bad data, unreachable database --------------------------------------------------


def test_a_corrupt_checkpoint_fails_only_its_workflow_naming_it() -> None:
    import psycopg

    from celery_durable.error import DBOSSerializationError
    from tests.conftest import DATABASE_URL

    workflow_id = new_id()
    crash_at["now"] = True
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        interrupted_workflow()
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute(
            "UPDATE celery_durable.operation_outputs SET output = '{not json' "
            "WHERE workflow_uuid = %s AND function_id = 1",
            (workflow_id,),
        )
    with SetWorkflowID(workflow_id), pytest.raises(DBOSSerializationError) as raised:
        interrupted_workflow()
    assert f"Workflow {workflow_id} step 1 (record_side_effect)" in str(raised.value)
    assert DBOS.retrieve_workflow(workflow_id).get_status().status == "ERROR"
    assert calls == Counter({"first": 1})  # the corrupt step was not run again
    assert interrupted_workflow() == ["first-done", "second-done"]  # others unaffected


def test_an_unreachable_database_fails_start_workflow_clearly_and_publishes_nothing(
    celery_app: Any,
) -> None:
    from celery.signals import before_task_publish

    from celery_durable.error import DBOSSystemDatabaseError
    from tests.conftest import DATABASE_URL

    published: list[Any] = []

    def on_publish(**kwargs: Any) -> None:
        published.append(kwargs)

    before_task_publish.connect(on_publish)
    DBOS(
        celery=celery_app,
        config={"name": "tests", "system_database_url": "postgresql://u:pw@127.0.0.1:1/nowhere"},
    )
    try:
        with pytest.raises(DBOSSystemDatabaseError) as raised:
            DBOS.start_workflow(retrying_workflow, 1)
        assert "System database error" in str(raised.value) and "pw" not in str(raised.value)
        assert published == []
    finally:
        before_task_publish.disconnect(on_publish)
        DBOS(celery=celery_app, config={"name": "tests", "system_database_url": DATABASE_URL})
        DBOS.launch()


# -- DBOS's numbering: a workflow's operations are 1, 2, 3, ... ----------------------


@DBOS.step()
def step_ids() -> tuple[int | None, int | None, int | None]:
    status = DBOS.step_status
    context = DBOS.get_context()
    return (
        DBOS.step_id,
        None if status is None else status.step_id,
        None if context is None else context.step_id,
    )


@DBOS.workflow()
def numbered_operations() -> list[Any]:
    first = step_ids()
    DBOS.sleep(0)
    third = step_ids()
    return [first, third]


def test_operations_are_numbered_from_1_as_in_dbos() -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert numbered_operations() == [(1, 1, 1), (3, 3, 3)]
    steps = DBOS.list_workflow_steps(workflow_id)
    assert [(s["function_id"], s["function_name"]) for s in steps] == [
        (1, "step_ids"),
        (2, "DBOS.sleep"),
        (3, "step_ids"),
    ]


# -- the sync and async direct calls behave alike -----------------------------------


@DBOS.workflow(max_recovery_attempts=3)
async def async_with_recovery_budget() -> str:
    return "done"


@DBOS.workflow(max_recovery_attempts=3)
def sync_with_recovery_budget() -> str:
    return "done"


@pytest.mark.parametrize("synchronous_checkpoints", [True, False])
@pytest.mark.parametrize("is_async", [False, True])
def test_a_direct_call_applies_the_codes_recovery_budget(
    is_async: bool, synchronous_checkpoints: bool
) -> None:
    # Enqueued by a producer that does not know the code (the default budget, 100) to a
    # queue nobody consumes, then called directly: the code's declaration wins, as on a
    # worker, whichever way the call's claim is sent (with asynchronous checkpoints the
    # row is written apart from the claim).
    from tests.conftest import BROKER_URL, DATABASE_URL

    name = "async_with_recovery_budget" if is_async else "sync_with_recovery_budget"
    client = DBOSClient(DATABASE_URL, BROKER_URL)
    try:
        handle = client.enqueue(
            {"workflow_name": name, "queue_name": "nobody", "allow_unregistered": True}
        )
    finally:
        client.destroy()
    assert handle.get_status().max_recovery_attempts == 100
    session = DBOS._service().runtime.process
    runtime = Runtime(
        celery=session.celery,
        config={**session.config, "synchronous_checkpoints": synchronous_checkpoints},
        registry=DBOS._registry,
        queues={},
    )
    spec = DBOS._registry.get(name)
    assert spec is not None
    try:
        with SetWorkflowID(handle.workflow_id):
            if is_async:
                assert asyncio.run(runtime.starter.call_async(spec, (), {})) == "done"
            else:
                assert runtime.starter.call(spec, (), {}) == "done"
    finally:
        runtime.process.dispose()
    assert handle.get_status().max_recovery_attempts == 3


class Abort(BaseException):
    """Not an Exception: no workflow records it as its outcome."""


@DBOS.workflow()
def aborting_child() -> None:
    raise Abort("the child stopped before recording anything")


@DBOS.workflow()
def parent_of_aborting_child() -> None:
    aborting_child()


@pytest.mark.timeout(60)
def test_an_inline_child_that_records_no_outcome_raises_in_its_parent() -> None:
    # A direct call runs its children in-process; one that ends without an outcome must
    # not leave the parent waiting for a row that will never finish.
    with SetWorkflowID(new_id()), pytest.raises(Abort, match="before recording"):
        parent_of_aborting_child()
