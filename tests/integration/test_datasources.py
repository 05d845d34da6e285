"""``SQLAlchemyDatasource`` and ``AsyncSQLAlchemyDatasource`` (DBOS 3.x's transactions),
on a database of their own. A crash between a datasource transaction's commit and its
checkpoint is in tests/integration/test_classes_recovery.py."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from celery_durable import (
    DBOS,
    AsyncSQLAlchemyDatasource,
    SetWorkflowID,
    SQLAlchemyDatasource,
)
from celery_durable.error import DBOSException, DBOSSchemaMissingError
from tests.conftest import DATABASE_URL, recreate_database

pytestmark = pytest.mark.usefixtures("worker")

DATASOURCE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_datasource")
    .render_as_string(hide_password=False)
)
calls: Counter[str] = Counter()

# Constructed, not create()d: nothing connects at import, before the fixture below has
# created the database.
items = SQLAlchemyDatasource(database_url=DATASOURCE_URL)
async_items = AsyncSQLAlchemyDatasource(database_url=DATASOURCE_URL)


@pytest.fixture(scope="module", autouse=True)
def datasource_database(dbos: type[DBOS]) -> Iterator[None]:
    recreate_database(DATASOURCE_URL)
    # Without its table, a datasource that may not migrate is refused.
    with pytest.raises(DBOSSchemaMissingError, match=r"SQLAlchemyDatasource\.migrate"):
        SQLAlchemyDatasource.create(DATASOURCE_URL, run_migrations=False)
    # create() makes the datasource's table (transaction_outputs) in its database.
    SQLAlchemyDatasource.create(DATASOURCE_URL).dispose()
    asyncio.run(AsyncSQLAlchemyDatasource.create(DATASOURCE_URL, run_migrations=False)).dispose()
    with psycopg.connect(DATASOURCE_URL, autocommit=True) as connection:
        connection.execute("CREATE TABLE ds_items (id text PRIMARY KEY, qty integer)")
    yield
    items.dispose()
    async_items.dispose()


def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(DATASOURCE_URL) as connection:
        return connection.execute(sql, params).fetchall()


@items.transaction()
def add_item(item_id: str, qty: int) -> int:
    calls["add_item"] += 1
    items.sql_session().execute(
        text("INSERT INTO ds_items (id, qty) VALUES (:id, :qty)"), {"id": item_id, "qty": qty}
    )
    total = items.sql_session().execute(text("SELECT sum(qty) FROM ds_items")).scalar_one()
    return int(total)


@items.transaction
def count_items() -> int:
    return int(items.sql_session().execute(text("SELECT count(*) FROM ds_items")).scalar_one())


@DBOS.workflow()
def stocks(item_id: str, qty: int) -> list[int]:
    named = items.run_tx_step({"name": "counted"}, count_items)
    return [add_item(item_id, qty), named]


def test_a_datasource_transaction_runs_once_per_workflow() -> None:
    workflow_id = f"stock-{uuid.uuid4()}"
    item_id = f"item-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        first = stocks(item_id, 3)
    with SetWorkflowID(workflow_id):
        assert stocks(item_id, 3) == first  # replayed: the INSERT does not run again
    assert calls["add_item"] == 1
    assert rows("SELECT qty FROM ds_items WHERE id = %s", item_id) == [(3,)]
    # The outcome is in the datasource's own database, written with the INSERT.
    assert rows(
        "SELECT function_id, function_name FROM celery_durable.transaction_outputs "
        "WHERE workflow_uuid = %s ORDER BY function_id",
        workflow_id,
    ) == [(1, "counted"), (2, "add_item")]
    steps = DBOS.list_workflow_steps(workflow_id)
    assert [step["function_name"] for step in steps] == ["counted", "add_item"]


def test_a_started_workflow_runs_its_datasource_transaction_on_a_worker() -> None:
    item_id = f"item-{uuid.uuid4()}"
    handle = DBOS.start_workflow(stocks, item_id, 2)
    handle.get_result(timeout=30)
    assert rows("SELECT qty FROM ds_items WHERE id = %s", item_id) == [(2,)]


def test_an_error_rolls_back_and_is_recorded() -> None:
    @items.transaction(name="failing_insert", isolation_level="READ COMMITTED")
    def failing_insert(item_id: str) -> None:
        items.sql_session().execute(
            text("INSERT INTO ds_items (id, qty) VALUES (:id, 1)"), {"id": item_id}
        )
        raise ValueError("no")

    @DBOS.workflow()
    def fails(item_id: str) -> str:
        try:
            failing_insert(item_id)
        except ValueError as error:
            return str(error)
        return "ran"

    item_id = f"item-{uuid.uuid4()}"
    assert fails(item_id) == "no"
    assert rows("SELECT id FROM ds_items WHERE id = %s", item_id) == []


def test_outside_a_workflow_a_transaction_runs_unrecorded() -> None:
    item_id = f"item-{uuid.uuid4()}"
    add_item(item_id, 1)
    add_item(f"{item_id}-2", 1)
    assert rows("SELECT count(*) FROM ds_items WHERE id LIKE %s", f"{item_id}%") == [(2,)]


@async_items.transaction(name="async_add")
async def async_add(item_id: str, qty: int) -> int:
    session = async_items.sql_session()
    await session.execute(
        text("INSERT INTO ds_items (id, qty) VALUES (:id, :qty)"), {"id": item_id, "qty": qty}
    )
    return int(
        await session.scalar(text("SELECT qty FROM ds_items WHERE id = :id"), {"id": item_id})
    )


@DBOS.workflow()
async def async_stocks(item_id: str) -> int:
    return await async_add(item_id, 7)


def test_an_async_datasource_transaction_in_an_async_workflow() -> None:
    workflow_id = f"async-{uuid.uuid4()}"
    item_id = f"item-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert asyncio.run(async_stocks(item_id)) == 7
    with SetWorkflowID(workflow_id):
        assert asyncio.run(async_stocks(item_id)) == 7
    assert rows("SELECT qty FROM ds_items WHERE id = %s", item_id) == [(7,)]
    assert [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)] == ["async_add"]


def test_sql_session_outside_a_transaction_is_an_error() -> None:
    with pytest.raises(DBOSException, match="within a datasource transaction"):
        items.sql_session()
    with pytest.raises(DBOSException, match="within an async datasource transaction"):
        async_items.sql_session()


def test_the_wrong_kind_of_function_is_refused() -> None:
    async def coroutine() -> None:
        return None

    def plain() -> None:
        return None

    with pytest.raises(DBOSException, match="requires a non-coroutine function"):
        items.transaction(coroutine)
    with pytest.raises(DBOSException, match="requires a coroutine function"):
        async_items.transaction(plain)
    with pytest.raises(ValueError, match="isolation_level"):
        items.transaction(isolation_level="DIRTY")  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("schema", "billing"),
        ("serializer", object()),
        ("sessionmaker", object()),
        ("engine_kwargs", {"echo": True}),
    ],
)
def test_parameters_a_celery_deployment_cannot_honour_are_refused(
    parameter: str, value: Any
) -> None:
    with pytest.raises(DBOSException, match="not supported"):
        SQLAlchemyDatasource.create(DATASOURCE_URL, **{parameter: value})
    with pytest.raises(DBOSException, match="application_role"):
        SQLAlchemyDatasource.migrate(DATASOURCE_URL, application_role="app")
