"""DBOS 3.x's datasources: ``@DBOS.transaction`` on a database of your choosing.

``SQLAlchemyDatasource.create(url)`` names an application database; its
``@ds.transaction()`` functions run exactly as ``@DBOS.transaction`` ones do (the same
:mod:`celery_durable.engine.transactions` machinery over an
:class:`~celery_durable.store.application.ApplicationStore` of that database): inside a
workflow, the outcome is written to that database's ``transaction_outputs`` in the same
database transaction as the function's writes, so a transaction that committed is
never executed again. ``AsyncSQLAlchemyDatasource`` is the same for ``async def``
functions.

DBOS parameters that a Celery deployment cannot honour raise at once, naming what to
use instead (:func:`_refuse_unsupported`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypedDict, TypeVar, cast, overload

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from celery_durable.engine.transactions import (
    TransactionSpec,
    current_session,
    run_transaction,
    run_transaction_async,
)
from celery_durable.error import DBOSException
from celery_durable.service.awaited_session import AwaitedSession
from celery_durable.store.application import ISOLATION_LEVELS, ApplicationStore

P = ParamSpec("P")
R = TypeVar("R")
IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]


class DatasourceOptions(TypedDict, total=False):
    """A datasource transaction's options (``run_tx_step``'s first argument)."""

    name: str | None
    isolation_level: IsolationLevel | None


class _Datasource:
    """What both datasources share: the database, and a transaction's spec."""

    def __init__(
        self,
        *,
        database_url: str,
        engine_kwargs: dict[str, Any] | None = None,
        engine: Any = None,
        schema: str | None = None,
        serializer: Any = None,
        sessionmaker: Any = None,
    ) -> None:
        """DBOS 3.4's constructor (``create`` is the usual way): ``engine`` is used as
        it is (its pool; a forked worker child drops the parent's connections), the
        other parameters as :func:`_refuse_unsupported` says."""
        _refuse_unsupported(
            schema=None if schema in _DEFAULT_SCHEMAS else schema,
            serializer=serializer,
            sessionmaker=sessionmaker,
            engine_kwargs=engine_kwargs,
        )
        pool_size = int((engine_kwargs or {}).get("pool_size", 5))
        self.database_url = database_url
        self.store = ApplicationStore(database_url, pool_size=pool_size)
        if engine is not None:
            if engine_kwargs:
                raise DBOSException(
                    "Datasource engine_kwargs apply to the engine the datasource creates: "
                    "with engine=, configure that engine instead"
                )
            self.store.adopt_engine(_sync_postgres_engine(engine))

    def _spec(
        self, ds_options: DatasourceOptions | None, function: Callable[..., Any]
    ) -> TransactionSpec:
        options = ds_options or DatasourceOptions()
        isolation_level = options.get("isolation_level") or "SERIALIZABLE"
        if isolation_level not in ISOLATION_LEVELS:
            raise DBOSException(
                f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, "
                f"not {isolation_level!r}"
            )
        store = self.store
        return TransactionSpec(
            name=options.get("name") or function.__qualname__,
            isolation_level=isolation_level,
            store=lambda: store,
        )

    def dispose(self) -> None:
        """Closes this process's connections to the datasource's database."""
        self.store.dispose()


class SQLAlchemyDatasource(_Datasource):
    """A PostgreSQL application database for synchronous transactions (DBOS 3.x).

    Create it with :meth:`create`; decorate functions with :meth:`transaction`; inside
    one, :meth:`sql_session` is the transaction's SQLAlchemy ``Session``.
    """

    @staticmethod
    def migrate(
        database_url: str, *, schema: str | None = None, application_role: str | None = None
    ) -> None:
        """Creates or upgrades the datasource's ``transaction_outputs`` table."""
        _refuse_unsupported(
            schema=None if schema in _DEFAULT_SCHEMAS else schema,
            application_role=application_role,
        )
        ApplicationStore(database_url, pool_size=1).migrate()

    @staticmethod
    def create(
        database_url: str,
        engine_kwargs: dict[str, Any] | None = None,
        engine: Any = None,
        schema: str | None = None,
        serializer: Any = None,
        sessionmaker: Any = None,
        run_migrations: bool = True,
    ) -> SQLAlchemyDatasource:
        """A datasource on ``database_url`` (its table created unless
        ``run_migrations=False``). ``engine_kwargs`` may set ``pool_size``."""
        datasource = SQLAlchemyDatasource(
            database_url=database_url,
            engine_kwargs=engine_kwargs,
            engine=engine,
            schema=schema,
            serializer=serializer,
            sessionmaker=sessionmaker,
        )
        if run_migrations:
            datasource.run_migrations()
        else:
            # This role may not be allowed to run DDL; the table must be there already.
            datasource.verify_migrations()
        return datasource

    def run_migrations(self) -> None:
        """Creates or upgrades the datasource's table (and its database, if missing)."""
        self.store.migrate()

    def verify_migrations(self) -> None:
        """Raises:
        DBOSSchemaMissingError: the datasource's table is missing or out of date."""
        self.store.require_current()

    def sql_session(self) -> Session:
        """The running transaction's ``Session`` (it commits when the function returns).

        Raises:
            DBOSException: called outside a datasource transaction.
        """
        session = current_session.get()
        if session is None:
            raise DBOSException("sql_session() must be called within a datasource transaction")
        return session

    def run_tx_step(
        self,
        ds_options: DatasourceOptions | None,
        func: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Runs ``func`` as a transaction on this datasource (exactly once in a workflow)."""
        spec = self._spec(ds_options, func)
        if inspect.iscoroutinefunction(func):
            raise DBOSException(
                f"Function {spec.name} is a coroutine; use "
                "AsyncSQLAlchemyDatasource.run_tx_step_async instead"
            )
        return cast(R, run_transaction(spec, func, args, kwargs))

    @overload
    def transaction(self, func: Callable[P, R]) -> Callable[P, R]: ...

    @overload
    def transaction(
        self,
        func: None = None,
        *,
        name: str | None = None,
        isolation_level: IsolationLevel = "SERIALIZABLE",
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def transaction(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        isolation_level: IsolationLevel = "SERIALIZABLE",
    ) -> Any:
        """Declares a transaction on this datasource: ``@ds.transaction`` or
        ``@ds.transaction(name=..., isolation_level=...)``."""
        options = _options(name, isolation_level)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(function):
                raise DBOSException(
                    "SQLAlchemyDatasource.transaction requires a non-coroutine function, "
                    f"but {function.__qualname__} is a coroutine"
                )

            @functools.wraps(function)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.run_tx_step(options, function, *args, **kwargs)

            return wrapper

        return decorator if func is None else decorator(func)


class AsyncSQLAlchemyDatasource(_Datasource):
    """:class:`SQLAlchemyDatasource` for ``async def`` transactions.

    :meth:`sql_session` is awaited as DBOS's ``AsyncSession`` is
    (``await session.execute(...)``); the statements run on the same synchronous
    connection as ``@DBOS.transaction``'s, so they block the event loop while they run.
    """

    @staticmethod
    async def migrate(
        database_url: str, *, schema: str | None = None, application_role: str | None = None
    ) -> None:
        """Creates or upgrades the datasource's ``transaction_outputs`` table."""
        SQLAlchemyDatasource.migrate(database_url, schema=schema, application_role=application_role)

    @staticmethod
    async def create(
        database_url: str,
        engine_kwargs: dict[str, Any] | None = None,
        engine: Any = None,
        schema: str | None = None,
        serializer: Any = None,
        sessionmaker: Any = None,
        run_migrations: bool = True,
    ) -> AsyncSQLAlchemyDatasource:
        """See :meth:`SQLAlchemyDatasource.create`."""
        datasource = AsyncSQLAlchemyDatasource(
            database_url=database_url,
            engine_kwargs=engine_kwargs,
            engine=engine,
            schema=schema,
            serializer=serializer,
            sessionmaker=sessionmaker,
        )
        if run_migrations:
            await datasource.run_migrations()
        else:
            await datasource.verify_migrations()
        return datasource

    async def run_migrations(self) -> None:
        """See :meth:`SQLAlchemyDatasource.run_migrations`."""
        self.store.migrate()

    async def verify_migrations(self) -> None:
        """See :meth:`SQLAlchemyDatasource.verify_migrations`."""
        self.store.require_current()

    def sql_session(self) -> AwaitedSession:
        """The running transaction's session, awaited as an ``AsyncSession``.

        Raises:
            DBOSException: called outside a datasource transaction.
        """
        session = current_session.get()
        if session is None:
            raise DBOSException(
                "sql_session() must be called within an async datasource transaction"
            )
        return AwaitedSession(session)

    async def run_tx_step_async(
        self,
        ds_options: DatasourceOptions | None,
        func: Callable[P, Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Runs ``func`` as a transaction on this datasource (exactly once in a workflow)."""
        spec = self._spec(ds_options, func)
        if not inspect.iscoroutinefunction(func):
            raise DBOSException(
                f"Function {spec.name} must be a coroutine function for AsyncSQLAlchemyDatasource"
            )
        return cast(R, await run_transaction_async(spec, func, args, kwargs))

    def transaction(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        isolation_level: IsolationLevel = "SERIALIZABLE",
    ) -> Any:
        """Declares an ``async def`` transaction on this datasource."""
        options = _options(name, isolation_level)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            if not inspect.iscoroutinefunction(function):
                raise DBOSException(
                    "AsyncSQLAlchemyDatasource.transaction requires a coroutine function, "
                    f"but {function.__qualname__} is not"
                )

            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.run_tx_step_async(options, function, *args, **kwargs)

            return wrapper

        return decorator if func is None else decorator(func)


def _options(name: str | None, isolation_level: IsolationLevel) -> DatasourceOptions:
    """The decorator's options, checked when it is applied (as ``@DBOS.transaction``)."""
    if isolation_level not in ISOLATION_LEVELS:
        raise ValueError(
            f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, not {isolation_level!r}"
        )
    options = DatasourceOptions(isolation_level=isolation_level)
    if name is not None:
        options["name"] = name
    return options


# What to use instead of each DBOS datasource parameter a Celery deployment cannot honour.
_INSTEAD = {
    "schema": "the datasource's table is celery_durable.transaction_outputs (the default "
    "schema, None or 'dbos', is accepted)",
    "serializer": "configure the serializer in DBOSConfig (config['serializer'])",
    "sessionmaker": "use sql_session(), the session the transaction opens (a session "
    "whose commit and rollback the transaction owns); pass engine= for the engine",
    "application_role": "grant the role USAGE on schema celery_durable and SELECT, INSERT "
    "on celery_durable.transaction_outputs yourself",
}


# schema values that ask for nothing: DBOS's default (None: "dbos") and our own schema.
_DEFAULT_SCHEMAS = (None, "dbos", "celery_durable")


def _sync_postgres_engine(engine: Any) -> Engine:
    """The datasource's engine: a synchronous PostgreSQL engine on psycopg (3).

    Raises:
        DBOSException: another kind of engine (an ``AsyncEngine`` too: the transactions
            run on synchronous connections here, see AsyncSQLAlchemyDatasource).
    """
    # An AsyncEngine wraps a synchronous one; told without importing SQLAlchemy's asyncio
    # extension (it needs greenlet, which a plain install lacks).
    if not isinstance(engine, Engine) and isinstance(getattr(engine, "sync_engine", None), Engine):
        raise DBOSException(
            "Datasource engine= must be a synchronous SQLAlchemy Engine here (async "
            "transactions run on synchronous connections): pass "
            "create_engine('postgresql+psycopg://...'), or database_url"
        )
    if not isinstance(engine, Engine):
        raise DBOSException(f"Datasource engine= must be a SQLAlchemy Engine, not {engine!r}")
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        raise DBOSException(
            "Datasource engine= must be a PostgreSQL engine on psycopg 3 "
            f"(postgresql+psycopg://...), not {engine.dialect.name}+{engine.dialect.driver}"
        )
    return engine


def _refuse_unsupported(*, engine_kwargs: dict[str, Any] | None = None, **given: Any) -> None:
    """Raises for a DBOS parameter celery_durable cannot honour (never ignores one)."""
    for parameter, value in given.items():
        if value is not None:
            raise DBOSException(
                f"Datasource parameter {parameter}= is not supported: {_INSTEAD[parameter]}"
            )
    unknown = sorted(set(engine_kwargs or {}) - {"pool_size"})
    if unknown:
        raise DBOSException(
            f"Datasource engine_kwargs {unknown} are not supported: only pool_size is"
        )
