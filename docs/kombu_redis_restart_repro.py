"""kombu's Redis transport: a broker connection lost while a message is held
unacknowledged ends in AttributeError("'NoneType' object has no attribute 'hostname'")
from Channel._connparams. In a Celery worker (an ETA/countdown task, or any task with
acks_late) this is "Unrecoverable error" and the worker exits on a Redis restart.

Needs kombu, redis-py and a redis-server binary on PATH; no Celery. Run:

    python kombu_redis_restart_repro.py

It starts its own redis-server on a free port (no persistence) and stops it. With the
bug it ends with the AttributeError's traceback (exit status 1); without, it prints
"not reproduced". See kombu-redis-restart.md next to it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import kombu
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int, *options: str) -> None:
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            *options,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


def stop_redis(port: int) -> None:
    # Not running, or the connection closed by the shutdown itself.
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(port=port).shutdown(nosave=True)


def reproduce(port: int, before_close: Callable[[], None] = lambda: None) -> None:
    connection = kombu.Connection(f"redis://127.0.0.1:{port}/0")
    connection.ensure_connection()
    tasks = kombu.Queue("tasks", kombu.Exchange("tasks", type="direct"), "tasks")

    # 1. The consumer channel (a Celery worker's task consumer: the connection's default
    #    channel) receives a message and holds it unacknowledged (an ETA task).
    channel = connection.default_channel
    kombu.Producer(channel).publish(
        {"eta": "later"}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks]
    )
    held: list[kombu.Message] = []
    consumer = kombu.Consumer(
        channel, [tasks], accept=["json"], callbacks=[lambda _, message: held.append(message)]
    )
    consumer.consume()
    connection.drain_events(timeout=5)
    assert len(held) == 1 and not held[0].acknowledged

    # 2. A second channel consuming an auto-delete fanout queue (a Celery worker's
    #    remote-control "pidbox" channel is one).
    broadcast = kombu.Queue(
        "broadcast", kombu.Exchange("broadcast", type="fanout"), auto_delete=True
    )
    kombu.Consumer(connection.channel(), [broadcast], accept=["json"]).consume()

    # 3. Idle, a worker's event loop keeps a BRPOP in flight on the consumer channel.
    channel._brpop_start()

    # 4. Redis goes away (a restart, a failover).
    stop_redis(port)

    # 5. What Celery's consumer does on the connection error
    #    (celery.worker.consumer.Consumer.on_connection_error_after_connected):
    with contextlib.suppress(Exception):
        connection.collect(socket_timeout=2)
    before_close()
    # Celery calls this through kombu.common.ignore_errors, which ignores connection
    # and channel errors only: the AttributeError raised here stops the worker.
    connection.close()


def main() -> int:
    port = free_port()
    start_redis(port)
    try:
        reproduce(port)
    finally:
        stop_redis(port)
    print(f"not reproduced with kombu {kombu.__version__}, redis-py {redis.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
