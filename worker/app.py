"""The deployable worker: ``celery -A worker.app worker`` for any workflows (``beat`` too,
optionally: the workers run the recovery sweep themselves).

Builds the Celery app and DBOS from environment variables (see ``worker.settings``),
then imports the modules named in ``CELERY_DURABLE_IMPORTS`` (default:
``worker.examples``). Those modules only define workflows, steps and transactions with
``@DBOS...`` decorators; they must not build their own Celery app or call ``DBOS(...)``.

Required: ``CELERY_DURABLE_DATABASE_URL`` and ``CELERY_DURABLE_BROKER_URL`` (or
``CELERY_BROKER_URL``). Optional: ``CELERY_DURABLE_APP_DATABASE_URL``,
``CELERY_DURABLE_APP_NAME``, ``CELERY_DURABLE_SYS_DB_POOL_SIZE``,
``CELERY_DURABLE_RECOVERY_INTERVAL_SECONDS``, ``CELERY_DURABLE_RECOVERY_GRACE_SECONDS``,
``CELERY_DURABLE_MAX_BROKER_DELAY_SECONDS``, ``CELERY_DURABLE_VISIBILITY_TIMEOUT_SECONDS``,
``CELERY_DURABLE_TASK_EVENTS`` (default true: Flower needs them) and
``CELERY_DURABLE_METRICS_PORT`` (Prometheus metrics on that port; with
``CELERY_DURABLE_METRICS_HOST``, default ``0.0.0.0``).
"""

from __future__ import annotations

import importlib
import os

from celery import Celery

from celery_durable import DBOS
from celery_durable.core.environment import IMPORTS as IMPORTS_ENV
from celery_durable.error import DBOSInitializationError
from worker.settings import WorkerSettings, from_environ


def build(settings: WorkerSettings) -> Celery:
    """The Celery app serving the workflows of ``settings.imports``."""
    celery = Celery(settings.app_name, broker=settings.broker_url)
    celery.conf.update(settings.celery_config())
    dbos = DBOS(celery=celery, config=settings.dbos_config())
    # Imported after DBOS is configured, so their workflows register on this app.
    for module in settings.imports:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise DBOSInitializationError(
                f"{IMPORTS_ENV}: cannot import {module!r}: {error}"
            ) from error
        if DBOS._current_service() is not dbos.service:
            # Its workflows would register on that other app, and this worker would
            # serve none of them.
            raise DBOSInitializationError(
                f"{IMPORTS_ENV}: {module!r} configures its own DBOS(...); modules listed "
                "there must only define workflows (run `celery -A <module> worker` for a "
                "module that builds its own app)"
            )
    return celery


try:
    app = build(from_environ(os.environ))
except DBOSInitializationError as error:
    # One line, not a traceback through Celery's app loading: the exit status is 1.
    raise SystemExit(f"Cannot start the worker: {error.message}") from None
