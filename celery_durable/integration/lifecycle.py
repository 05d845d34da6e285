"""What a Celery worker does for celery_durable besides running workflow tasks.

When a worker is ready, its main process (in a background thread: a worker must not
wait on the database to start consuming) migrates the schema, records the workflows it
serves, runs one recovery sweep, and then sweeps every ``recovery_interval_seconds``
until it shuts down. Sweeps are serialized fleet-wide in PostgreSQL, so any number of
workers may run them; no beat is needed. Beat may still run the
``celery_durable.recover`` task: it is the same sweep, under the same lock.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from celery_durable.error import DBOSException
from celery_durable.store import Redispatch

logger = logging.getLogger("celery_durable.recovery")

RECOVERY_TASK_NAME = "celery_durable.recover"

# Apps that have the recovery task already (Celery keeps the first task of a name).
_apps_with_recovery: weakref.WeakSet[Celery] = weakref.WeakSet()


class WorkerRuntime(Protocol):
    """What the worker's hooks need of the current configuration."""

    celery: Celery

    def register_served(self, executor_id: str) -> None: ...

    def recover(self) -> list[Redispatch]: ...


class Sweeper:
    """Runs the recovery sweep every ``interval_seconds`` in a daemon thread.

    A failed sweep is logged and the next one comes on time: the rows say what is due.
    """

    def __init__(self, sweep: Callable[[], list[Redispatch]], interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise DBOSException(f"recovery_interval_seconds must be > 0, not {interval_seconds!r}")
        self._sweep = sweep
        self.interval_seconds = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="celery-durable-sweeper", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval_seconds):
            sweep_once(self._sweep, "Periodic recovery")


def sweep_once(sweep: Callable[[], list[Redispatch]], label: str) -> None:
    try:
        recovered = sweep()
    except Exception as error:
        logger.warning("%s failed (the next sweep retries): %s", label, error)
        return
    if recovered:
        logger.info("%s published %d workflow(s) again", label, len(recovered))


class WorkerHooks:
    """Connects a configuration to its Celery app's worker signals.

    Args:
        runtime: Returns the configuration current when a signal fires (a process may
            configure DBOS again: the hooks of the old one then do nothing).
        interval_seconds: The periodic sweep's interval.
        recover_on_start: Run a sweep as soon as the worker is ready.
    """

    def __init__(
        self,
        runtime: Callable[[], WorkerRuntime | None],
        *,
        owner: WorkerRuntime,
        interval_seconds: float,
        recover_on_start: bool,
    ) -> None:
        self._runtime = runtime
        self._owner = owner
        self._interval_seconds = interval_seconds
        self._recover_on_start = recover_on_start
        self._sweeper: Sweeper | None = None
        self._shut_down = False
        self._lock = threading.Lock()
        worker_ready.connect(self._on_ready, weak=False)
        worker_shutdown.connect(self._on_shutdown, weak=False)

    def _current(self, sender: Any) -> WorkerRuntime | None:
        runtime = self._runtime()
        app = getattr(sender, "app", None)
        if runtime is not self._owner or (app is not None and app is not runtime.celery):
            return None
        return runtime

    def _on_ready(self, sender: Any = None, **_: Any) -> None:
        runtime = self._current(sender)
        if runtime is None:
            return
        hostname = str(getattr(sender, "hostname", "") or "worker")
        with self._lock:
            self._shut_down = False
        threading.Thread(
            target=self._start, args=(runtime, hostname), name="celery-durable-start"
        ).start()

    def _start(self, runtime: WorkerRuntime, hostname: str) -> None:
        try:
            runtime.register_served(hostname)
        except Exception as error:  # the sweeper must start whatever happened here
            logger.warning("Worker start-up registration failed: %s", error)
        if self._recover_on_start:
            sweep_once(runtime.recover, "Start-up recovery")
        with self._lock:
            if self._shut_down:  # the worker stopped while this thread started up
                return
            self._sweeper = Sweeper(runtime.recover, self._interval_seconds)
            self._sweeper.start()

    def _on_shutdown(self, sender: Any = None, **_: Any) -> None:
        with self._lock:
            self._shut_down = True
            sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.stop()

    def disconnect(self) -> None:
        """Stops the sweeper and forgets the signals (a configuration replaced)."""
        self._on_shutdown()
        worker_ready.disconnect(self._on_ready)
        worker_shutdown.disconnect(self._on_shutdown)


def register_recovery_task(
    app: Celery, recover: Callable[[], list[Redispatch]], interval_seconds: float
) -> None:
    """The ``celery_durable.recover`` task, scheduled for beat every interval.

    Workers sweep by themselves; a beat that runs it adds nothing but another caller
    of the same fleet-wide sweep (harmless: sweeps never overlap). ``recover`` must
    find the configuration current when it runs: it is registered once per app.
    """
    if app in _apps_with_recovery:
        return
    _apps_with_recovery.add(app)

    def recovery_task() -> int:
        return len(recover())

    sweep_task = app.task(name=RECOVERY_TASK_NAME, ignore_result=True)(recovery_task)
    app.add_periodic_task(
        interval_seconds,
        sweep_task.s(),
        name=RECOVERY_TASK_NAME,
        # Sweeps that no worker took in time are useless: the next one comes.
        expires=interval_seconds,
    )
