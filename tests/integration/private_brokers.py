"""Brokers of a test's own, on free ports, that the test may stop and start again.

The machine's Redis and RabbitMQ are shared: a test that restarts a broker restarts one
of these. Each is stopped and its files removed by ``close``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.subprocesses import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRedis:
    """A ``redis-server`` on a free port. ``persistent``: an append-only file fsynced on
    every write in a temporary directory, so the data survives ``restart``; otherwise a
    restart starts it empty (as ``shutdown nosave`` of a Redis without persistence)."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="cdt-redis-"))
        self.persistent = persistent
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        # No retries: a stopped server answers "connection refused" at once.
        return redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0))

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *persistence, "--dir", str(self.directory),
             "--daemonize", "yes", "--pidfile", str(self.directory / "redis.pid")],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``: the server exits at once (the append-only file, if any,
        already holds every write)."""
        with contextlib.suppress(redis.ConnectionError):  # not running, or the reply lost
            self.client().shutdown(nosave=True)
        deadline = time.monotonic() + 10
        while self._running():
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not stop")
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _running(self) -> bool:
        try:
            self.client().ping()
        except redis.ConnectionError:
            return False
        return True

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRabbitMQ:
    """A RabbitMQ node of its own: its own node name, AMQP and distribution ports, data
    and log directories and Erlang cookie, no plugins, and none of the machine's
    configuration files. Started detached; ``stop`` is ``rabbitmqctl -n <node> stop``."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cdt-rabbitmq-"))
        self.port = free_port()
        self.node = f"cdt{uuid.uuid4().hex[:8]}@localhost"
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")
        (self.directory / "home").mkdir()
        self.env = {
            **os.environ,
            "HOME": str(self.directory / "home"),  # the node's own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "none"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.directory / "none.config"),
        }
        self.running = False
        self.start()

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, timeout: float = 90) -> None:
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.running = True
        self._ctl("wait", self.env["RABBITMQ_PID_FILE"], "--timeout", "60")

    def stop(self) -> None:
        """Stops the node and waits until its process has exited."""
        if self.running:
            self._ctl("stop", self.env["RABBITMQ_PID_FILE"])
            self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
