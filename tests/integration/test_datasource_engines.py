"""DBOS 3.4's datasource constructor and ``create(engine=...)``: a datasource runs its
transactions on the engine it is given (exactly once, as on its own engine); what
cannot be honoured raises naming what to use instead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import sessionmaker

from celery_durable import DBOS, AsyncSQLAlchemyDatasource, SetWorkflowID, SQLAlchemyDatasource
from celery_durable.error import DBOSException
from tests.integration.test_datasources import (  # noqa: F401 (its fixture)
    DATASOURCE_URL,
    datasource_database,
    rows,
)

pytestmark = pytest.mark.usefixtures("worker")

PSYCOPG_URL = DATASOURCE_URL.replace("postgresql://", "postgresql+psycopg://", 1)

# The application's engine (nothing connects before the first statement).
ENGINE = create_engine(PSYCOPG_URL, pool_size=2)

# DBOS's constructor, as DBOS's create() calls it: built at import, connected later.
given = SQLAlchemyDatasource(
    database_url=DATASOURCE_URL, engine_kwargs={}, engine=ENGINE, schema=None, serializer=None
)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    yield ENGINE
    given.dispose()
    ENGINE.dispose()


@given.transaction()
def add_through_given(item_id: str) -> int:
    given.sql_session().execute(
        text("INSERT INTO ds_items (id, qty) VALUES (:id, 1)"), {"id": item_id}
    )
    return int(given.sql_session().execute(text("SELECT count(*) FROM ds_items")).scalar_one())


@DBOS.workflow()
def add_in_workflow(item_id: str) -> int:
    return add_through_given(item_id)


def test_create_with_an_engine_runs_on_that_engine(engine: Engine) -> None:
    datasource = SQLAlchemyDatasource.create(DATASOURCE_URL, engine=engine, schema="dbos")
    try:

        @datasource.transaction()
        def count() -> int:
            return int(
                datasource.sql_session().execute(text("SELECT count(*) FROM ds_items")).scalar_one()
            )

        before = engine.pool.checkedin()  # type: ignore[attr-defined]
        assert count() >= 0
        assert engine.pool.checkedin() >= max(before, 1)  # type: ignore[attr-defined]
    finally:
        datasource.dispose()
    # The caller's engine is the caller's: dispose() leaves it working.
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_a_workflow_transaction_on_a_given_engine_runs_once(engine: Engine) -> None:
    item_id = f"engine-{uuid.uuid4().hex[:8]}"
    workflow_id = f"ds-engine-{item_id}"
    with SetWorkflowID(workflow_id):
        first = DBOS.start_workflow(add_in_workflow, item_id).get_result(timeout=20)
    # Run again under its id: the recorded outcome is returned, nothing is inserted twice.
    with SetWorkflowID(workflow_id):
        again = DBOS.start_workflow(add_in_workflow, item_id).get_result(timeout=20)
    assert again == first
    assert rows("SELECT count(*) FROM ds_items WHERE id = %s", item_id) == [(1,)]


def test_what_cannot_be_honoured_raises(engine: Engine) -> None:
    with pytest.raises(DBOSException, match="sessionmaker= is not supported"):
        SQLAlchemyDatasource.create(DATASOURCE_URL, sessionmaker=sessionmaker())
    with pytest.raises(DBOSException, match="configure that engine instead"):
        SQLAlchemyDatasource.create(DATASOURCE_URL, engine=engine, engine_kwargs={"pool_size": 2})
    with pytest.raises(DBOSException, match="schema= is not supported"):
        SQLAlchemyDatasource(
            database_url=DATASOURCE_URL, engine_kwargs={}, engine=None, schema="x", serializer=None
        )
    sqlite = create_engine("sqlite://")
    with pytest.raises(DBOSException, match="PostgreSQL engine on psycopg"):
        SQLAlchemyDatasource.create(DATASOURCE_URL, engine=sqlite)
    async_engine = create_async_engine(PSYCOPG_URL)
    with pytest.raises(DBOSException, match="synchronous SQLAlchemy Engine"):
        asyncio.run(AsyncSQLAlchemyDatasource.create(DATASOURCE_URL, engine=async_engine))
    asyncio.run(async_engine.dispose())
    sqlite.dispose()


def test_the_async_datasource_takes_a_synchronous_engine(engine: Engine) -> None:
    datasource = asyncio.run(AsyncSQLAlchemyDatasource.create(DATASOURCE_URL, engine=engine))
    try:

        @datasource.transaction()
        async def count() -> int:
            result = await datasource.sql_session().execute(text("SELECT count(*) FROM ds_items"))
            return int(result.scalar_one())

        assert asyncio.run(count()) >= 0
    finally:
        datasource.dispose()
