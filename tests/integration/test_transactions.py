"""@DBOS.transaction: exactly-once database work, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Integer, String, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from celery_durable import DBOS, SetWorkflowID
from celery_durable.engine.transactions import transaction_committed
from celery_durable.error import DBOSException, RecordedError
from tests.conftest import DATABASE_URL

calls: Counter[str] = Counter()
calls_lock = threading.Lock()


def count(name: str) -> None:
    with calls_lock:
        calls[name] += 1


class Base(DeclarativeBase):
    pass


class Payment(Base):
    __tablename__ = "test_payments"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    amount: Mapped[float]


class CounterRow(Base):
    __tablename__ = "test_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int]


@pytest.fixture(autouse=True)
def tables(dbos: type[DBOS]) -> Iterator[None]:
    engine = DBOS._service().runtime.process.application_store._engines.get()
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    calls.clear()
    yield


def payments() -> list[tuple[str, float]]:
    with psycopg.connect(DATABASE_URL) as connection:
        return connection.execute("SELECT id, amount FROM test_payments ORDER BY id").fetchall()


class SimulatedCrash(BaseException):
    pass


# -- the specification's example, as written with our imports -----------------------


class payment_api:  # stands in for a client module
    @staticmethod
    def charge(amount: float) -> str:
        count("charge")
        return f"pay-{int(amount * 100)}"


# Use steps for external calls
@DBOS.step()
def call_payment_processor(amount: float):  # type: ignore[no-untyped-def]
    return payment_api.charge(amount)


# Use transactions for database operations
@DBOS.transaction()
def record_payment(payment_id: str, amount: float):  # type: ignore[no-untyped-def]
    count("record_payment")
    # Access database via SQLAlchemy session
    with DBOS.sql_session() as session:
        payment = Payment(id=payment_id, amount=amount)
        session.add(payment)


@DBOS.workflow()
def pay(amount: float) -> str:
    payment_id = call_payment_processor(amount)
    record_payment(payment_id, amount)
    return payment_id


def test_the_seeds_payment_example_runs_once_and_only_once() -> None:
    workflow_id = f"pay-{uuid.uuid4()}"
    for _ in range(2):
        with SetWorkflowID(workflow_id):
            assert pay(12.5) == "pay-1250"
    assert payments() == [("pay-1250", 12.5)]
    assert calls == Counter({"charge": 1, "record_payment": 1})
    steps = DBOS.list_workflow_steps(workflow_id)
    assert [(s["function_id"], s["function_name"]) for s in steps] == [
        (1, "call_payment_processor"),
        (2, "record_payment"),
    ]


# -- replay after a commit, errors, the session's forms ------------------------------


@DBOS.transaction(isolation_level="READ COMMITTED")
def insert_and_count(payment_id: str) -> int:
    count("insert_and_count")
    DBOS.sql_session.execute(
        text("INSERT INTO test_payments (id, amount) VALUES (:id, 1)"), {"id": payment_id}
    )
    return int(DBOS.sql_session.scalar(select(func.count()).select_from(Payment)) or 0)


@DBOS.step()
def before(name: str) -> str:
    count(f"step:{name}")
    return name


@DBOS.workflow()
def step_transaction_step(payment_id: str) -> list[Any]:
    return [before("a"), insert_and_count(payment_id), before("b")]


def test_a_transaction_committed_before_a_crash_is_not_executed_again() -> None:
    workflow_id = f"txn-{uuid.uuid4()}"

    def crash_after_commit(sender: Any = None, **_: Any) -> None:
        raise SimulatedCrash()

    transaction_committed.connect(crash_after_commit)
    try:
        with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
            step_transaction_step("p-1")
    finally:
        transaction_committed.disconnect(crash_after_commit)
    # Committed in the application database, not yet checkpointed in the system one.
    assert [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)] == ["before"]
    with SetWorkflowID(workflow_id):
        assert step_transaction_step("p-1") == ["a", 1, "b"]
    assert payments() == [("p-1", 1.0)]
    assert calls == Counter({"step:a": 1, "insert_and_count": 1, "step:b": 1})
    steps = DBOS.list_workflow_steps(workflow_id)
    assert [s["function_name"] for s in steps] == ["before", "insert_and_count", "before"]
    assert steps[1]["output"] == 1


@DBOS.transaction()
def fails_after_writing(payment_id: str) -> None:
    count("fails_after_writing")
    DBOS.sql_session.add(Payment(id=payment_id, amount=2))
    DBOS.sql_session.flush()
    raise ValueError(f"rejected {payment_id}")


crash_marker: dict[str, bool] = {}


@DBOS.workflow()
def catches_transaction_error(payment_id: str) -> str:
    try:
        fails_after_writing(payment_id)
    except ValueError as error:
        outcome = f"caught: {error}"
    if crash_marker.pop("crash", False):
        raise SimulatedCrash()
    return outcome


def test_a_transactions_error_is_rolled_back_recorded_and_replayed() -> None:
    workflow_id = f"txn-{uuid.uuid4()}"
    crash_marker["crash"] = True
    with SetWorkflowID(workflow_id), pytest.raises(SimulatedCrash):
        catches_transaction_error("p-2")
    with SetWorkflowID(workflow_id):
        assert catches_transaction_error("p-2") == "caught: rejected p-2"
    assert calls == Counter({"fails_after_writing": 1})
    assert payments() == []  # the write was rolled back with the failure
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert isinstance(step["error"], ValueError)


@DBOS.transaction()
def duplicate_key() -> None:
    count("duplicate_key")
    DBOS.sql_session.execute(text("INSERT INTO test_payments (id, amount) VALUES ('dup', 1)"))
    DBOS.sql_session.execute(text("INSERT INTO test_payments (id, amount) VALUES ('dup', 1)"))


@DBOS.workflow()
def duplicate_key_workflow() -> None:
    duplicate_key()


def test_other_database_errors_are_recorded_and_raised_never_retried() -> None:
    workflow_id = f"txn-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id), pytest.raises(IntegrityError):
        duplicate_key_workflow()
    assert calls == Counter({"duplicate_key": 1})
    with pytest.raises((IntegrityError, RecordedError)) as raised:
        DBOS.retrieve_workflow(workflow_id).get_result()
    assert "IntegrityError" in type(raised.value).__name__ or "IntegrityError" in str(raised.value)


@DBOS.transaction()
def commits_itself() -> None:
    DBOS.sql_session.commit()


def test_calling_commit_yourself_is_a_clear_error() -> None:
    with pytest.raises(DBOSException, match="Do not call commit"):
        commits_itself()
    with pytest.raises(DBOSException, match=r"only available inside a @DBOS\.transaction"):
        DBOS.sql_session.execute(text("SELECT 1"))


def test_isolation_level_is_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="isolation_level must be one of"):
        DBOS.transaction(isolation_level="CHAOS")  # type: ignore[arg-type]


# -- serialization failures ----------------------------------------------------------


@DBOS.transaction(isolation_level="SERIALIZABLE")
def increment() -> int:
    count("increment")
    session = DBOS.sql_session
    current = session.scalar(select(CounterRow.value).where(CounterRow.id == 1))
    session.execute(text("SELECT pg_sleep(0.05)"))
    session.execute(
        CounterRow.__table__.update().where(CounterRow.id == 1).values(value=(current or 0) + 1)
    )
    return (current or 0) + 1


@DBOS.workflow()
def increment_workflow() -> int:
    return increment()


def test_serialization_failures_are_retried_until_each_commits_once() -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute("INSERT INTO test_counter (id, value) VALUES (1, 0)")
    ids = [f"inc-{uuid.uuid4()}" for _ in range(6)]
    results: list[int] = []
    errors: list[BaseException] = []

    def run(workflow_id: str) -> None:
        try:
            with SetWorkflowID(workflow_id):
                results.append(increment_workflow())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(workflow_id,)) for workflow_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    with psycopg.connect(DATABASE_URL) as connection:
        assert connection.execute("SELECT value FROM test_counter").fetchone() == (6,)
        recorded = connection.execute(
            "SELECT count(*) FROM celery_durable.transaction_outputs WHERE workflow_uuid = ANY(%s)",
            (ids,),
        ).fetchone()
    assert recorded == (6,)
    assert calls["increment"] > 6  # conflicts happened, and were retried


# -- outside a workflow, async, on a Celery worker -----------------------------------


def test_a_transaction_outside_a_workflow_runs_unrecorded() -> None:
    assert insert_and_count("solo") == 1
    with psycopg.connect(DATABASE_URL) as connection:
        assert connection.execute(
            "SELECT count(*) FROM celery_durable.transaction_outputs "
            "WHERE function_name = 'insert_and_count' AND workflow_uuid LIKE 'solo%%'"
        ).fetchone() == (0,)
    assert payments() == [("solo", 1.0)]


@DBOS.transaction()
async def async_insert(payment_id: str) -> str:
    count("async_insert")
    await asyncio.sleep(0)
    DBOS.sql_session.add(Payment(id=payment_id, amount=3))
    return payment_id


@DBOS.workflow()
async def async_payment_workflow(payment_id: str) -> str:
    return await async_insert(payment_id)


def test_async_transaction_in_an_async_workflow() -> None:
    workflow_id = f"txn-{uuid.uuid4()}"
    for _ in range(2):
        with SetWorkflowID(workflow_id):
            assert asyncio.run(async_payment_workflow("p-async")) == "p-async"
    assert payments() == [("p-async", 3.0)]
    assert calls == Counter({"async_insert": 1})


@pytest.mark.usefixtures("worker")
def test_transactions_in_workflows_on_a_celery_worker() -> None:
    handle = DBOS.start_workflow(step_transaction_step, "p-celery")
    assert handle.get_result(timeout=30) == ["a", 1, "b"]
    assert payments() == [("p-celery", 1.0)]
