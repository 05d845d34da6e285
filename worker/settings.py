"""The deployable worker's settings, read from ``CELERY_DURABLE_*`` environment variables.

Parsing is a pure function of a mapping, so that a wrong deployment fails at start-up
with a message naming the variable, before anything connects anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery_durable import DBOSConfig
from celery_durable.core import environment as env
from celery_durable.error import DBOSInitializationError

DEFAULT_IMPORTS = "worker.examples"


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Everything ``worker.app`` needs to build the Celery app and DBOS.

    Optional numbers are None when unset: the library's defaults then apply.
    """

    app_name: str
    database_url: str
    app_database_url: str | None
    broker_url: str
    imports: tuple[str, ...]
    sys_db_pool_size: int | None
    recovery_interval_seconds: float | None
    recovery_grace_seconds: float | None
    max_broker_delay_seconds: float | None
    visibility_timeout_seconds: float | None
    task_events: bool
    metrics_port: int | None = None
    metrics_host: str | None = None
    application_version: str | None = None
    session_database_url: str | None = None

    def dbos_config(self) -> DBOSConfig:
        config: DBOSConfig = {"name": self.app_name, "system_database_url": self.database_url}
        if self.app_database_url:
            config["application_database_url"] = self.app_database_url
        if self.sys_db_pool_size is not None:
            config["sys_db_pool_size"] = self.sys_db_pool_size
        if self.recovery_interval_seconds is not None:
            config["recovery_interval_seconds"] = self.recovery_interval_seconds
        if self.recovery_grace_seconds is not None:
            config["recovery_grace_seconds"] = self.recovery_grace_seconds
        if self.max_broker_delay_seconds is not None:
            config["max_broker_delay_seconds"] = self.max_broker_delay_seconds
        if self.metrics_port is not None:
            config["metrics_port"] = self.metrics_port
        if self.metrics_host:
            config["metrics_host"] = self.metrics_host
        if self.application_version:
            config["application_version"] = self.application_version
        if self.session_database_url:
            config["session_database_url"] = self.session_database_url
        return config

    def celery_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "broker_connection_retry_on_startup": True,
            # Workflow tasks are acks_late and may run long: a message prefetched behind
            # a long step waits while another worker idles. A step retry's ETA message
            # does not count against this (Celery raises the prefetch for each one held).
            "worker_prefetch_multiplier": 1,
            # Flower sees only events (this is `celery worker -E`). A retry's retries
            # and eta reach Flower with its message's task-received event, so workers
            # send no task-sent events: those would be labelled with each pool child's
            # own name (gen<pid>@host), a new Prometheus series per child process.
            "worker_send_task_events": self.task_events,
        }
        if self.visibility_timeout_seconds is not None:
            config["broker_transport_options"] = {
                "visibility_timeout": self.visibility_timeout_seconds
            }
        return config


def broker_url_from(environ: Mapping[str, str]) -> str:
    """``CELERY_DURABLE_BROKER_URL``, else Celery's own ``CELERY_BROKER_URL``."""
    url = env.broker_url(environ)
    if not url:
        raise DBOSInitializationError(
            f"{env.BROKER_URL} (or {env.CELERY_BROKER_URL}) is not set: the Celery broker URL, "
            "e.g. redis://redis:6379/0 or amqp://guest:guest@rabbitmq:5672//"
        )
    return url


def database_url_from(environ: Mapping[str, str]) -> str:
    url = environ.get(env.DATABASE_URL)
    if not url:
        raise DBOSInitializationError(
            f"{env.DATABASE_URL} is not set: the PostgreSQL system database URL, "
            "e.g. postgresql://user:password@postgres:5432/celery_durable"
        )
    return url


def _number(environ: Mapping[str, str], name: str, kind: type[float] | type[int]) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise DBOSInitializationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value <= 0:
        raise DBOSInitializationError(f"{name}={raw!r} must be positive")
    return value


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise DBOSInitializationError(f"{name}={raw!r} is not a boolean (true or false)")


def from_environ(environ: Mapping[str, str]) -> WorkerSettings:
    """Reads the settings; raises ``DBOSInitializationError`` naming a bad variable."""
    imports = tuple(env.imports(environ, DEFAULT_IMPORTS))
    return WorkerSettings(
        app_name=environ.get(env.APP_NAME) or "celery_durable",
        database_url=database_url_from(environ),
        app_database_url=environ.get(env.APP_DATABASE_URL) or None,
        broker_url=broker_url_from(environ),
        imports=imports,
        sys_db_pool_size=_number(environ, env.SYS_DB_POOL_SIZE, int),
        recovery_interval_seconds=_number(environ, env.RECOVERY_INTERVAL_SECONDS, float),
        recovery_grace_seconds=_number(environ, env.RECOVERY_GRACE_SECONDS, float),
        max_broker_delay_seconds=_number(environ, env.MAX_BROKER_DELAY_SECONDS, float),
        visibility_timeout_seconds=_number(environ, env.VISIBILITY_TIMEOUT_SECONDS, float),
        task_events=_flag(environ, env.TASK_EVENTS, True),
        metrics_port=_number(environ, env.METRICS_PORT, int),
        metrics_host=environ.get(env.METRICS_HOST) or None,
        application_version=environ.get(env.APPLICATION_VERSION) or None,
        session_database_url=environ.get(env.SESSION_DATABASE_URL) or None,
    )
