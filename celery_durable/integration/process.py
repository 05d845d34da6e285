"""One configuration's process-wide machinery: its validated configuration, both stores,
the schemas' migration and one engine per process (rebuilt after a fork)."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from typing import cast

from celery import Celery

from celery_durable.core.serialization import make_serializer
from celery_durable.engine.executor import WorkflowEngine
from celery_durable.engine.launcher import Launcher
from celery_durable.engine.registry import Registry
from celery_durable.error import DBOSInitializationError
from celery_durable.integration import publishing
from celery_durable.integration.app_version import compute_app_version, version_live_ms
from celery_durable.integration.config import DEFAULT_CONFIG, DBOSConfig
from celery_durable.integration.config_keys import check_keys
from celery_durable.store import QueueLimits, SystemStore, redact
from celery_durable.store.application import ApplicationStore
from celery_durable.store.embedded import start_postgres

# DBOS's ``enable_patching``: every deployment shares this one version.
PATCHING_VERSION = "PATCHING_ENABLED"


def validated_config(celery: Celery, config: DBOSConfig) -> DBOSConfig:
    """The configuration merged over the defaults; bad values raise
    ``DBOSInitializationError`` in one line."""
    if not isinstance(celery, Celery):
        raise DBOSInitializationError(f"celery must be a Celery app, not {type(celery)!r}")
    check_keys(config)
    # A key given as None is absent (DBOS programs write os.environ.get(...)).
    given = cast(DBOSConfig, {key: value for key, value in config.items() if value is not None})
    merged: DBOSConfig = {**DEFAULT_CONFIG, **given}
    if merged.get("enable_patching"):
        logging.getLogger("dbos").warning(
            "enable_patching is deprecated (as in DBOS Transact 3.4): DBOS.patch and "
            "DBOS.deprecate_patch do not need it. To keep every deployment on one "
            "application version, as the flag does, set application_version."
        )
        if not merged.get("application_version"):
            merged["application_version"] = PATCHING_VERSION
    name = merged.get("name")
    if not isinstance(name, str) or not name:
        raise DBOSInitializationError('config["name"] is required (a non-empty string)')
    version = merged.get("application_version")
    if version is not None and (not isinstance(version, str) or not version):
        raise DBOSInitializationError(
            f'config["application_version"] must be a non-empty string, not {version!r}'
        )
    modules = merged.get("importable_error_modules", [])
    if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
        raise DBOSInitializationError(
            f'config["importable_error_modules"] must be a list of module names, not {modules!r}'
        )
    return merged


class ProcessServices:
    """The configuration, the stores and this process's engine, for one Celery app.

    The engine's :class:`~celery_durable.engine.launcher.Launcher` is set by the
    composition root (:class:`~celery_durable.integration.runtime.Runtime`) before the
    first engine is built.
    """

    def __init__(
        self,
        *,
        celery: Celery,
        config: DBOSConfig,
        registry: Registry,
        queues: dict[str, QueueLimits],
    ) -> None:
        merged = validated_config(celery, config)
        url = merged.get("system_database_url") or start_postgres(merged["name"])
        self.celery = celery
        self.config = merged
        self.registry = registry
        self.queues = queues
        self.serializer = make_serializer(
            merged["serializer"], merged.get("importable_error_modules", [])
        )
        self.store = SystemStore(
            url,
            pool_size=merged["sys_db_pool_size"],
            synchronous_checkpoints=merged["synchronous_checkpoints"],
            session_url=merged.get("session_database_url"),
            listen=merged.get("use_listen_notify") is not False,
        )
        self.store.connections.set_observability_timeout(
            merged.get("observability_query_timeout_sec")
        )
        self.application_store = ApplicationStore(
            merged.get("application_database_url") or url, pool_size=merged["sys_db_pool_size"]
        )
        self.launcher: Launcher | None = None
        self._engine: WorkflowEngine | None = None
        self._engine_pid = 0
        self._migrated_pid = 0
        self._lock = threading.Lock()

    def migrate(self) -> int:
        """Creates or upgrades both databases' tables (once per process); returns the
        system schema version. With ``run_migrations: False`` it only checks that the
        system schema is current (``DBOSSchemaMissingError`` otherwise)."""
        if self.config.get("run_migrations") is False:
            self.store.schema.require_current()
            self._migrated_pid = os.getpid()
            return self.store.schema.version()
        version = self.store.schema.migrate()
        self.application_store.migrate()
        self._migrated_pid = os.getpid()
        return version

    def engine(self) -> WorkflowEngine:
        """This process's engine. It does not migrate (see :meth:`migrate`): it checks,
        once per process, that the schema is current."""
        pid = os.getpid()
        if self._engine is None or self._engine_pid != pid:
            with self._lock:
                if self._engine is None or self._engine_pid != pid:
                    self._engine = self._new_engine(pid)
                    self._engine_pid = pid
        return self._engine

    def worker_engine(self) -> WorkflowEngine:
        """The engine of a worker process: the schemas are migrated on first use."""
        if self._migrated_pid != os.getpid():
            with self._lock:
                if self._migrated_pid != os.getpid():
                    self.migrate()
        return self.engine()

    def _new_engine(self, pid: int) -> WorkflowEngine:
        launcher = self.launcher
        if launcher is None:
            raise RuntimeError("ProcessServices.launcher is not set")
        self.store.schema.require_current()
        executor_id = self.config.get("executor_id") or f"{socket.gethostname()}:{pid}"
        if self.queues:
            # Before this process claims anything: a claim admits workflows by the
            # limits in the queues table, so they must be there.
            self.store.workers.register(
                workflow_names=[], queues=list(self.queues.values()), executor_id=executor_id
            )
        return WorkflowEngine(
            store=self.store,
            serializer=self.serializer,
            executor_id=executor_id,
            lookup=self.registry.get,
            classes=self.registry.classes,
            launcher=launcher,
            dispatch=launcher.publish,
            application_version=self.application_version,
            version_live_ms=version_live_ms(self.config["recovery_interval_seconds"]),
        )

    @functools.cached_property
    def application_version(self) -> str:
        """The version of this process's code: configured, or computed (as DBOS does)
        from the workflows registered when it is first asked for (engine start)."""
        configured = self.config.get("application_version")
        if configured:
            return configured
        return compute_app_version(self.config["name"], self.registry.all())

    @functools.cached_property
    def max_countdown_seconds(self) -> float:
        return publishing.max_countdown_seconds(
            self.celery, self.config.get("max_broker_delay_seconds")
        )

    @property
    def database_label(self) -> str:
        """The system database's URL with its password hidden (for messages)."""
        return redact(self.store.url)

    def dispose(self) -> None:
        self.store.dispose()
        self.application_store.dispose()
