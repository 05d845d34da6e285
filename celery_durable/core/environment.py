"""The environment variables of celery_durable, named once.

Only the edges read them: the ``celery-durable`` CLI and the deployable ``worker/``. The
library itself is configured through ``DBOS(celery=..., config=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

DATABASE_URL = "CELERY_DURABLE_DATABASE_URL"
"""The system database."""

APP_DATABASE_URL = "CELERY_DURABLE_APP_DATABASE_URL"
"""The application database of ``@DBOS.transaction`` (default: the system database)."""

BROKER_URL = "CELERY_DURABLE_BROKER_URL"
"""The Celery broker (default: Celery's own ``CELERY_BROKER_URL``)."""

CELERY_BROKER_URL = "CELERY_BROKER_URL"

IMPORTS = "CELERY_DURABLE_IMPORTS"
"""Comma-separated modules that define the workflows."""

APP_NAME = "CELERY_DURABLE_APP_NAME"
SYS_DB_POOL_SIZE = "CELERY_DURABLE_SYS_DB_POOL_SIZE"
RECOVERY_INTERVAL_SECONDS = "CELERY_DURABLE_RECOVERY_INTERVAL_SECONDS"
RECOVERY_GRACE_SECONDS = "CELERY_DURABLE_RECOVERY_GRACE_SECONDS"
MAX_BROKER_DELAY_SECONDS = "CELERY_DURABLE_MAX_BROKER_DELAY_SECONDS"
VISIBILITY_TIMEOUT_SECONDS = "CELERY_DURABLE_VISIBILITY_TIMEOUT_SECONDS"
TASK_EVENTS = "CELERY_DURABLE_TASK_EVENTS"


def broker_url(environ: Mapping[str, str]) -> str | None:
    """``CELERY_DURABLE_BROKER_URL``, else ``CELERY_BROKER_URL``; None if neither is set."""
    return environ.get(BROKER_URL) or environ.get(CELERY_BROKER_URL) or None


def imports(environ: Mapping[str, str], default: str = "") -> list[str]:
    """The modules ``CELERY_DURABLE_IMPORTS`` names, in order."""
    raw = environ.get(IMPORTS, default)
    return [module.strip() for module in raw.split(",") if module.strip()]
