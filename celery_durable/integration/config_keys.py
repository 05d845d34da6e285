"""What becomes of each key of DBOS Transact 3.4's ``DBOSConfig`` here.

A DBOS program's configuration works unchanged, and nothing in it is silently dropped.
Every key is in one of three groups:

- honoured (``DBOSConfig``'s documented keys: ``name``, ``system_database_url``,
  ``log_level``, ``run_migrations``, ``max_executor_threads``, ...);
- :data:`REPLACED`: a key whose job is done differently here; given a value, it raises
  ``DBOSInitializationError`` naming what to use instead;
- :data:`NOT_APPLICABLE`: a key of a DBOS service or internal poller a Celery deployment
  does not have (Conductor, OTLP export, Kafka); accepted with one warning naming it.

A key that is None counts as absent (DBOS programs often write
``"conductor_key": os.environ.get(...)``). A key DBOS does not have either raises, so a
typo is not dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from celery_durable.core.serializers import Serializer
from celery_durable.error import DBOSInitializationError
from celery_durable.integration.config import DBOSConfig
from celery_durable.store.migrations import SCHEMA

_RESUME_ON_NEW_VERSION = (
    "a worker runs the workflows of its own application_version: move older ones with "
    "DBOS.fork_workflow(..., application_version=) or resume them on a worker of theirs"
)

REPLACED: dict[str, str] = {
    "system_database_engine": (
        "pass system_database_url (and sys_db_pool_size, session_database_url): "
        "celery_durable builds its own engines"
    ),
    "db_engine_kwargs": (
        "use sys_db_pool_size for the pool and session_database_url behind a pooler; "
        "server settings go on the database role (ALTER ROLE ... SET)"
    ),
    "sys_db_idle_transaction_timeout_sec": (
        "set idle_in_transaction_session_timeout on the database role (ALTER ROLE ... SET)"
    ),
    "observability_query_timeout_sec": (
        "set statement_timeout on the role the dashboard or CLI connects as"
    ),
    "dbos_system_schema": (
        "celery_durable's tables live in the schema celery_durable: give the application "
        "a system_database_url of its own to keep two apart"
    ),
    "sharding": "sharded system databases are not supported: remove sharding",
    "auto_upgrade": _RESUME_ON_NEW_VERSION,
    "auto_upgrade_interval_sec": _RESUME_ON_NEW_VERSION,
    "auto_upgrade_grace_sec": _RESUME_ON_NEW_VERSION,
}

_OTLP = (
    "celery_durable's spans go to the application's OpenTelemetry TracerProvider "
    "(config 'tracing'): configure OTLP export there"
)
_CONDUCTOR = "DBOS Conductor does not manage Celery workers: use the dashboard and CLI"

NOT_APPLICABLE: dict[str, str] = {
    "conductor_key": _CONDUCTOR,
    "conductor_url": _CONDUCTOR,
    "conductor_executor_metadata": _CONDUCTOR,
    "conductor_metadata_only_mode": _CONDUCTOR,
    "transact_enterprise_key": "there are no Transact Enterprise features here",
    "enable_otlp": _OTLP,
    "otlp_traces_endpoints": _OTLP,
    "otlp_logs_endpoints": _OTLP,
    "otlp_attributes": _OTLP,
    "otlp_log_level": _OTLP,
    "otel_attribute_format": _OTLP,
    "console_log_level": "logs go through Python's logging: configure its handlers",
    "kafka_queue_polling_interval_sec": "there are no Kafka consumer queues here",
    "scheduler_polling_interval_sec": (
        "schedules are kept by the workers' schedule keeper, which hears of changes at once"
    ),
    "notification_listener_polling_interval_sec": (
        "notifications arrive by LISTEN/NOTIFY, with waits re-checking on their own"
    ),
    "notification_coalesce_sec": "notifications are sent as each write commits",
    "sys_db_polling_concurrency": "waits hold no pooled connection while they wait",
}


# Values that ask for nothing (DBOS's own defaults): accepted without a word, as None is.
# DBOS's default schema name "dbos" stands for our tables' schema, as in the CLI.
INERT: dict[str, tuple[object, ...]] = {
    "sharding": (False,),
    "auto_upgrade": (False,),
    "enable_otlp": (False,),
    "dbos_system_schema": ("dbos", SCHEMA),
}


def _inert(key: str, value: object) -> bool:
    return any(type(value) is type(v) and value == v for v in INERT.get(key, ()))


class ConfigKeyWarning(UserWarning):
    """A DBOS configuration key that has no effect on a Celery deployment."""


def check_keys(config: Mapping[str, Any]) -> None:
    """Raises for unknown and replaced keys, warns once per key that cannot apply.

    Raises:
        DBOSInitializationError: naming the key and what to use instead.
    """
    known = DBOSConfig.__annotations__
    for key, value in config.items():
        if key not in known:
            raise DBOSInitializationError(
                f"Unknown configuration key {key!r} (see DBOSConfig for the keys)"
            )
        if value is None or _inert(key, value):
            continue
        if key in REPLACED:
            raise DBOSInitializationError(f"config[{key!r}] is not supported: {REPLACED[key]}")
        if key in NOT_APPLICABLE:
            warnings.warn(
                f"config[{key!r}] has no effect here: {NOT_APPLICABLE[key]}",
                ConfigKeyWarning,
                stacklevel=4,
            )
    _check_values(config)


def _check_values(config: Mapping[str, Any]) -> None:
    """The keys honoured only for some values."""
    if config.get("use_listen_notify") is False:
        # As DBOSClient(use_listen_notify=False): latency only, nothing to observe.
        warnings.warn(
            "config['use_listen_notify'] = False has no effect here: waits are woken by "
            "LISTEN/NOTIFY, with polling as their fallback",
            ConfigKeyWarning,
            stacklevel=5,
        )
    serializer = config.get("serializer")
    if serializer is not None and not isinstance(serializer, str | Serializer):
        raise DBOSInitializationError(
            'config["serializer"] takes "json" (default), "pickle" or a dbos.Serializer '
            f"instance, not {type(serializer).__name__}"
        )
    threads = config.get("max_executor_threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise DBOSInitializationError(
            f'config["max_executor_threads"] must be a positive integer, not {threads!r}'
        )
