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
SESSION_DATABASE_URL = "CELERY_DURABLE_SESSION_DATABASE_URL"
"""A direct URL for the fence and LISTEN when the database URL is a transaction pooler."""
APPLICATION_VERSION = "CELERY_DURABLE_APPLICATION_VERSION"
"""The version of the deployed code (for example a release tag): see "Safe deploys"."""

# ``celery-durable dashboard``: where it listens, who may act, where Flower is.
DASHBOARD_HOST = "CELERY_DURABLE_DASHBOARD_HOST"
DASHBOARD_PORT = "CELERY_DURABLE_DASHBOARD_PORT"
DASHBOARD_TOKEN = "CELERY_DURABLE_DASHBOARD_TOKEN"
"""A token that allows actions (``Authorization: Bearer`` or the login form)."""
DASHBOARD_USERNAME = "CELERY_DURABLE_DASHBOARD_USERNAME"
DASHBOARD_PASSWORD = "CELERY_DURABLE_DASHBOARD_PASSWORD"
"""With ``DASHBOARD_USERNAME``: an HTTP basic login that allows actions."""
FLOWER_URL = "CELERY_DURABLE_FLOWER_URL"
"""Flower's address: the dashboard links each workflow's Celery task there."""
METRICS_PORT = "CELERY_DURABLE_METRICS_PORT"
"""The worker exports Prometheus metrics on this port (default: none)."""
METRICS_HOST = "CELERY_DURABLE_METRICS_HOST"


def broker_url(environ: Mapping[str, str]) -> str | None:
    """``CELERY_DURABLE_BROKER_URL``, else ``CELERY_BROKER_URL``; None if neither is set."""
    return environ.get(BROKER_URL) or environ.get(CELERY_BROKER_URL) or None


def imports(environ: Mapping[str, str], default: str = "") -> list[str]:
    """The modules ``CELERY_DURABLE_IMPORTS`` names, in order."""
    raw = environ.get(IMPORTS, default)
    return [module.strip() for module in raw.split(",") if module.strip()]
