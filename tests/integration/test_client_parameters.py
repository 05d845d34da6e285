"""DBOSClient's DBOS 3.4 constructor parameters and its connection calls: each
honoured, or refused with a message naming what to use instead."""

from __future__ import annotations

import asyncio
import uuid
import warnings

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from celery_durable import DBOS, DBOSClient
from celery_durable.error import DBOSException, DBOSSystemDatabaseError
from tests.conftest import DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")

# Nothing listens here, so connecting fails fast.
UNREACHABLE = "postgresql://postgres@127.0.0.1:59999/nowhere"


@DBOS.workflow(name="client_parameters_echo")
def client_parameters_echo(value: str) -> str:
    return value


def run_one(client: DBOSClient) -> str:
    handle = client.enqueue(
        {"workflow_name": "client_parameters_echo", "queue_name": TEST_QUEUE},
        f"v-{uuid.uuid4().hex[:6]}",
    )
    result = handle.get_result(timeout=20)
    assert isinstance(result, str)
    return result


def test_an_eager_client_checks_its_connection_a_lazy_one_on_first_use() -> None:
    with pytest.raises(DBOSSystemDatabaseError):
        DBOSClient(system_database_url=UNREACHABLE)
    lazy = DBOSClient(system_database_url=UNREACHABLE, lazy=True)
    try:
        with pytest.raises(DBOSSystemDatabaseError):
            lazy.check_connection()
        with pytest.raises(DBOSSystemDatabaseError):
            asyncio.run(lazy.check_connection_async())
    finally:
        lazy.destroy()
    client = DBOSClient(system_database_url=DATABASE_URL, lazy=True, use_listen_notify=False)
    try:
        client.check_connection()
        asyncio.run(client.check_connection_async())
        assert run_one(client).startswith("v-")
    finally:
        client.destroy()


def test_the_client_runs_on_the_engine_it_is_given() -> None:
    engine = create_engine(
        DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=3
    )
    try:
        client = DBOSClient(system_database_engine=engine)
        try:
            assert run_one(client).startswith("v-")
            # The client's statements went through the given engine's pool.
            assert engine.pool.checkedin() >= 1  # type: ignore[attr-defined]
        finally:
            client.destroy()
        # destroy() leaves the caller's engine alone: its pooled connections remain.
        assert engine.pool.checkedin() >= 1  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_the_pool_size_and_default_values_are_honoured() -> None:
    client = DBOSClient(
        system_database_url=DATABASE_URL,
        system_database_pool_size=7,
        dbos_system_schema="dbos",
        use_listen_notify=True,
        retry_connection_errors=False,
        sharding=False,
    )
    try:
        pool = client._service.runtime.process.store.connections.engine.pool
        assert pool.size() == 7  # type: ignore[attr-defined]
        assert run_one(client).startswith("v-")
    finally:
        client.destroy()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"application_name": "billing"}, "application_name is not supported"),
        ({"dbos_system_schema": "other"}, "dbos_system_schema='other' is not supported"),
        ({"sharding": True}, "sharding=True is not supported"),
        ({"observability_query_timeout_sec": float("nan")}, "must be a finite number"),
        ({"sys_db_idle_transaction_timeout_sec": 5.0}, "idle_in_transaction_session_timeout"),
        ({"lazy": True, "use_listen_notify": True}, "both lazy and use_listen_notify"),
        ({"system_database_url": None}, "requires a system_database_url or"),
    ],
)
def test_what_cannot_be_honoured_raises(parameters: dict[str, object], message: str) -> None:
    arguments = {"system_database_url": DATABASE_URL, **parameters}
    with pytest.raises(DBOSException, match=message):
        DBOSClient(**arguments)  # type: ignore[arg-type]


def test_an_engine_is_refused_with_a_url_or_another_driver() -> None:
    engine = create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    sqlite = create_engine("sqlite://")
    try:
        with pytest.raises(DBOSException, match="system_database_engine alone"):
            DBOSClient(system_database_url=DATABASE_URL, system_database_engine=engine)
        with pytest.raises(DBOSException, match="system_database_engine alone"):
            DBOSClient(system_database_engine=engine, system_database_pool_size=3)
        with pytest.raises(DBOSException, match="PostgreSQL engine on psycopg"):
            DBOSClient(system_database_engine=sqlite)
    finally:
        engine.dispose()
        sqlite.dispose()


def test_polling_concurrency_is_accepted_with_one_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = DBOSClient(system_database_url=DATABASE_URL, system_database_polling_concurrency=2)
    client.destroy()
    assert [str(w.message).split(":")[0] for w in caught] == [
        "system_database_polling_concurrency has no effect here"
    ]


def test_rename_application_says_there_is_nothing_to_rename() -> None:
    client = DBOSClient(system_database_url=DATABASE_URL)
    try:
        with pytest.raises(DBOSException, match="no owning application"):
            client.rename_application("old", "new")
        with pytest.raises(DBOSException, match="no owning application"):
            asyncio.run(client.rename_application_async(None, "new", adopt_unclaimed_rows=True))
    finally:
        client.destroy()


def test_an_unreachable_database_raises_sqlalchemys_dbapi_error_as_dbos_does() -> None:
    # DBOS Transact lets SQLAlchemy's error through; ours is both, so a ported
    # ``except DBAPIError`` and ``except DBOSSystemDatabaseError`` both catch it.
    with pytest.raises(DBAPIError) as raised:
        DBOSClient(system_database_url=UNREACHABLE)
    assert isinstance(raised.value, DBOSSystemDatabaseError)
    assert isinstance(raised.value.orig, psycopg.OperationalError)
    assert not raised.value.connection_invalidated
    lazy = DBOSClient(system_database_url=UNREACHABLE, lazy=True, retry_connection_errors=False)
    try:
        with pytest.raises(DBAPIError, match="Connection refused"):
            lazy.enqueue({"workflow_name": "client_parameters_echo"}, "v")
    finally:
        lazy.destroy()
