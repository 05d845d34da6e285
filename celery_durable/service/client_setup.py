"""``DBOSClient(...)``'s parameters, DBOS Transact 3.4's: what each becomes here.

Honoured: ``system_database_url`` or ``system_database_engine`` (used as it is: its
pool, never disposed by the client), ``system_database_pool_size``, ``lazy`` (else the
client checks its connection at once, as DBOS's does), ``use_listen_notify`` (waits
are woken by notifications either way), ``retry_connection_errors=False`` (an
unreachable database raises). Values that ask for nothing (``dbos_system_schema="dbos"``,
``sharding=False``, None) are accepted; the others raise naming what to use instead,
as the same ``DBOSConfig`` keys do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from celery_durable.core.serialization import SerializerChoice
from celery_durable.error import DBOSException, DBOSInitializationError
from celery_durable.integration.config_keys import (
    NOT_APPLICABLE,
    REPLACED,
    ConfigKeyWarning,
    check_observability_timeout,
)
from celery_durable.service.tools import SCHEMA_NAMES
from celery_durable.service.wiring import client_service
from celery_durable.service.workflows import WorkflowService

__all__ = ["ClientParameters", "configured_client_service"]

# dbos_system_schema values that name where the tables are: DBOS's default (a program
# that leaves it) and our own schema.


@dataclass(frozen=True, kw_only=True)
class ClientParameters:
    """DBOS 3.4's ``DBOSClient`` keyword parameters, as given."""

    system_database_engine: Engine | None = None
    dbos_system_schema: str | None = "dbos"
    system_database_pool_size: int | None = None
    system_database_polling_concurrency: int | None = None
    use_listen_notify: bool = False
    application_name: str | None = None
    lazy: bool = False
    retry_connection_errors: bool = True
    observability_query_timeout_sec: float | None = None
    sys_db_idle_transaction_timeout_sec: float | None = None
    sharding: bool = False


def configured_client_service(
    system_database_url: str | None,
    celery: Celery | None,
    serializer: SerializerChoice,
    parameters: ClientParameters,
) -> WorkflowService:
    """The client's service, its parameters checked; connected unless ``lazy``.

    Raises:
        DBOSException: a parameter that cannot be honoured (naming what to use
            instead), both ``lazy`` and ``use_listen_notify`` (as DBOS), or neither a
            URL nor an engine.
        DBOSSystemDatabaseError: not ``lazy``, and the database cannot be reached.
    """
    _check(parameters)
    engine = parameters.system_database_engine
    if engine is not None:
        if system_database_url is not None or parameters.system_database_pool_size is not None:
            raise DBOSException(
                "Pass system_database_engine alone: the client uses that engine as it is "
                "(its URL and pool), so system_database_url and system_database_pool_size "
                "would be ignored"
            )
        system_database_url = _engine_url(engine)
    if system_database_url is None:
        raise DBOSException(
            "A DBOSClient requires a system_database_url or a system_database_engine."
        )
    service = client_service(
        system_database_url, celery, serializer, parameters.system_database_pool_size
    )
    connections = service.runtime.process.store.connections
    connections.set_observability_timeout(parameters.observability_query_timeout_sec)
    if engine is not None:
        connections.adopt_engine(engine)
    if not parameters.lazy:
        try:
            connections.check()
        except BaseException:
            service.release()
            raise
    return service


def _check(parameters: ClientParameters) -> None:
    if parameters.lazy and parameters.use_listen_notify:
        raise DBOSException(
            "A DBOSClient cannot be both lazy and use_listen_notify: the notification "
            "listener connects immediately."
        )
    if parameters.sharding:
        raise DBOSInitializationError(f"sharding=True is not supported: {REPLACED['sharding']}")
    if parameters.application_name is not None:
        raise DBOSInitializationError(
            "application_name is not supported: no applications share a celery_durable "
            "system database (one serves one Celery app's fleet), so workflows, schedules "
            "and queues have no owner; omit it (or give the application a "
            "system_database_url of its own)"
        )
    if parameters.dbos_system_schema not in (None, *SCHEMA_NAMES):
        raise DBOSInitializationError(
            f"dbos_system_schema={parameters.dbos_system_schema!r} is not supported: "
            f"{REPLACED['dbos_system_schema']}"
        )
    check_observability_timeout(parameters.observability_query_timeout_sec)
    name = "sys_db_idle_transaction_timeout_sec"
    if parameters.sys_db_idle_transaction_timeout_sec is not None:
        raise DBOSInitializationError(f"{name} is not supported: {REPLACED[name]}")
    if parameters.system_database_polling_concurrency is not None:
        warnings.warn(
            "system_database_polling_concurrency has no effect here: "
            f"{NOT_APPLICABLE['sys_db_polling_concurrency']}",
            ConfigKeyWarning,
            stacklevel=4,
        )


def _engine_url(engine: Any) -> str:
    """The engine's URL (with its password: the client's LISTEN connection uses it).

    Raises:
        DBOSException: not a PostgreSQL engine on psycopg (3).
    """
    if not isinstance(engine, Engine):
        raise DBOSException(
            f"system_database_engine must be a SQLAlchemy Engine, not {type(engine).__name__}"
        )
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        raise DBOSException(
            "system_database_engine must be a PostgreSQL engine on psycopg 3 "
            f"(postgresql+psycopg://...), not {engine.dialect.name}+{engine.dialect.driver}"
        )
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
