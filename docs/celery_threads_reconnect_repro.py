"""Celery's threads pool on RabbitMQ: after a broker reconnection with tasks in flight, a
pool thread sends ``basic.qos`` and waits for ``qos-ok`` on the consumer's connection
(``Consumer._restore_prefetch_count_after_connection_restart``, run by the task's
acknowledgement), racing the event loop's reads of the same socket. Sooner or later the
worker stops consuming for good and ignores SIGTERM.

Needs Celery and a RabbitMQ server (``rabbitmq-server`` and ``rabbitmqctl`` in
/usr/lib/rabbitmq/bin or on PATH); no celery_durable. Run:

    python celery_threads_reconnect_repro.py               # until it hangs (5 rounds at most)
    python celery_threads_reconnect_repro.py --first-sign  # until a pool thread sends basic.qos
    python celery_threads_reconnect_repro.py --with-workaround  # celery_durable's, installed

It starts its own RabbitMQ node (its own name, ports, data and cookie, no plugins) and
stops it. A worker (``-P threads -c 8``, ``acks_late``, prefetch multiplier 1) runs 0.2 s
tasks; each round closes the worker's connection from the broker (``rabbitmqctl
close_all_connections``: what a restart or a network blip does to the worker) while its
8 threads are busy, and waits for the worker to go on. It prints which threads sent
``basic.qos`` (from the worker's DEBUG log: kombu.common's ``basic.qos:
prefetch_count->N``). With the bug a pool thread sends it (exit status 1); the worker
hangs within a few rounds, and then a SIGTERM does not end it (its threads' stacks,
logged on SIGUSR1, are printed). See celery-threads-reconnect.md next to it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import Celery

HERE = Path(__file__).resolve().parent
TASKS = 400
THREADS = 8
ROUNDS = 5
STALL_SECONDS = 15.0

app = Celery("repro", broker=os.environ.get("REPRO_BROKER", "amqp://"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_log_format="[%(asctime)s: %(levelname)s/%(threadName)s] %(message)s",
)


if os.environ.get("REPRO_WORKAROUND"):
    from celery import bootsteps

    from celery_durable.integration import celery_prefetch

    class Workaround(bootsteps.StartStopStep):
        """celery_durable's workaround, as its worker bootstep installs it."""

        requires = ("celery.worker.components:Pool",)

        def start(self, worker: object) -> None:
            assert celery_prefetch.install(worker.consumer)  # type: ignore[attr-defined]

    app.steps["worker"].add(Workaround)


@app.task(name="repro.work")
def work(index: int) -> None:
    time.sleep(0.2)
    with open(os.environ["REPRO_DONE"], "a") as done:
        done.write(f"{index}\n")


# -- a RabbitMQ node of our own ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def program(name: str) -> str:
    for directory in ("/usr/lib/rabbitmq/bin", "/usr/sbin"):
        if (Path(directory) / name).is_file():
            return str(Path(directory) / name)
    return shutil.which(name) or name


class Node:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        (directory / "home").mkdir()
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(directory / "home"),
            "RABBITMQ_NODENAME": f"repro{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "none"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "none.config"),
        }
        subprocess.run(
            [program("rabbitmq-server"), "-detached"], env=self.env, check=True, timeout=60
        )
        self.ctl("wait", self.env["RABBITMQ_PID_FILE"], "--timeout", "60")

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl(self, *args: str) -> None:
        node = self.env["RABBITMQ_NODENAME"]
        subprocess.run(
            [program("rabbitmqctl"), "-n", node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=90,
        )

    def stop(self) -> None:
        self.ctl("stop", self.env["RABBITMQ_PID_FILE"])


# -- the scenario -------------------------------------------------------------------------


def qos_senders(log: str) -> list[str]:
    """The thread of each ``basic.qos`` the worker sent, in order."""
    return re.findall(r"DEBUG/([^\]]+)\] basic\.qos: prefetch_count->", log)


def stacks(log: str) -> str:
    """The main thread's stack and the busy pool threads' (of the SIGUSR1 dump)."""
    sections = re.split(r"\n\n(?=\S+\n=+\n)", log[log.rfind("Warm shutdown") :])
    shown = []
    for section in sections[1:]:
        name, _, rest = section.partition("\n")
        frames = rest.split("LOCAL VARIABLES")[0]
        if "work_queue.get" not in frames:  # an idle pool thread: left out
            shown.append(name + "\n" + frames.strip("=\n"))
    return "\n\n".join(shown)


def main(first_sign: bool, with_workaround: bool) -> int:
    directory = Path(tempfile.mkdtemp(prefix="celery-threads-repro-"))
    node = Node(directory)
    done_file, log_file = directory / "done", directory / "worker.log"
    done_file.write_text("")
    env = {**os.environ, "REPRO_BROKER": node.url(), "REPRO_DONE": str(done_file)}
    if with_workaround:
        env["REPRO_WORKAROUND"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", Path(__file__).stem, "worker", "-P", "threads",
         "-c", str(THREADS), "-l", "DEBUG", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env=env, cwd=HERE, stdout=log_file.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip

    def done() -> int:
        return len(done_file.read_text().split())

    def wait(predicate: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline or worker.poll() is not None:
                return False
            time.sleep(0.1)
        return True

    def go_on(target: int) -> bool:
        """Waits for ``target`` tasks done; False if none is done for STALL_SECONDS."""
        last, since = done(), time.monotonic()
        while done() < target:
            if worker.poll() is not None:
                return False
            if done() != last:
                last, since = done(), time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                return False
            time.sleep(0.1)
        return True

    hung = False
    try:
        app.conf.broker_url = node.url()
        for index in range(TASKS):
            work.delay(index)
        wait(lambda: done() >= THREADS, 60)
        for round_ in range(1, ROUNDS + 1):
            node.ctl("close_all_connections", "repro")  # every thread busy
            moved = go_on(min(done() + 4 * THREADS, TASKS))
            senders = qos_senders(log_file.read_text(errors="replace"))
            pool = sorted({name for name in senders if name != "MainThread"})
            print(
                f"round {round_}: {done()}/{TASKS} tasks done; basic.qos sent "
                f"{senders.count('MainThread')} times by MainThread, "
                f"{len(senders) - senders.count('MainThread')} by pool threads {pool}"
            )
            if not moved:
                hung = True
                print(f"the worker stopped consuming ({STALL_SECONDS:.0f} s without a task)")
                break
            if pool and first_sign:
                break
        if hung:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
                print("it exited on SIGTERM")
            except subprocess.TimeoutExpired:
                print("it ignored SIGTERM for 20 s; its busy threads (SIGUSR1):")
                worker.send_signal(signal.SIGUSR1)
                time.sleep(2)
                print(stacks(log_file.read_text(errors="replace")))
        senders = qos_senders(log_file.read_text(errors="replace"))
        bug = hung or any(name != "MainThread" for name in senders)
        print("reproduced" if bug else "not reproduced", f"(worker log: {log_file})")
        return 1 if bug else 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        node.stop()


if __name__ == "__main__":
    sys.exit(
        main(
            first_sign="--first-sign" in sys.argv[1:],
            with_workaround="--with-workaround" in sys.argv[1:],
        )
    )
