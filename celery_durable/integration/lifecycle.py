"""What a Celery worker does for celery_durable besides running workflow tasks.

When a worker starts (a bootstep after its pool), its main process (in a background
thread: a worker must not wait on the database to start consuming) migrates the schema,
records the workflows it serves, runs one recovery sweep, and then sweeps every
``recovery_interval_seconds`` until it shuts down, keeping time (workflow deadlines,
delayed starts) every second. Sweeps are serialized fleet-wide in PostgreSQL, so any number of
workers may run them; no beat is needed. Beat may still run the
``celery_durable.recover`` task: it is the same sweep, under the same lock.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from celery import Celery, bootsteps

from celery_durable.core import instrumentation
from celery_durable.error import DBOSException
from celery_durable.integration import (
    celery_prefetch,
    kombu_redis,
    queue_consumers,
    unknown_tasks,
)
from celery_durable.integration.enqueue_relay import EnqueueRelay
from celery_durable.integration.reachability import Reachability, one_line
from celery_durable.observability.exporter import MetricsExporter
from celery_durable.store import Redispatch

if TYPE_CHECKING:
    from celery_durable.integration.process import ProcessServices

logger = logging.getLogger("celery_durable.recovery")

RECOVERY_TASK_NAME = "celery_durable.recover"

# How long (in 0.1 s ticks) a starting worker waits for its consumer before consuming
# the registered queues (its sweeps catch up if the consumer takes longer).
_CONSUMER_WAIT_TICKS = 300

# How often a worker cancels workflows past their deadline and starts delayed ones.
TIMEKEEPING_SECONDS = 1.0

# Apps that have the recovery task already (Celery keeps the first task of a name).
_apps_with_recovery: weakref.WeakSet[Celery] = weakref.WeakSet()


class WorkerRuntime(Protocol):
    """What the worker's hooks need of the current configuration (its
    :class:`~celery_durable.integration.operating.WorkflowOperator`)."""

    @property
    def process(self) -> ProcessServices: ...

    def register_served(self, executor_id: str) -> None: ...

    def recover(self, executor_id: str | None = None) -> list[Redispatch]: ...

    def leave(self, executor_id: str) -> None: ...

    def keep_time(self) -> int: ...


class Sweeper:
    """Runs the recovery sweep every ``interval_seconds``, and timekeeping (deadlines,
    delayed starts) every ``TIMEKEEPING_SECONDS``, in a daemon thread.

    A failed pass is logged in one line, and the passes back off (``reachability``):
    growing intervals until one succeeds. The rows say what is due.
    """

    def __init__(
        self,
        sweep: Callable[[], list[Redispatch]],
        interval_seconds: float,
        keep_time: Callable[[], int] | None = None,
        reachability: Reachability | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise DBOSException(f"recovery_interval_seconds must be > 0, not {interval_seconds!r}")
        self._sweep = sweep
        self._keep_time = keep_time
        self._reachability = reachability or Reachability("(the system database)")
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
        tick = min(self.interval_seconds, TIMEKEEPING_SECONDS)
        next_sweep = time.monotonic() + self.interval_seconds
        reachability = self._reachability
        while not self._stopped.wait(tick):
            if not reachability.due():
                continue
            if self._keep_time is not None and not keep_time_once(self._keep_time, reachability):
                continue
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.interval_seconds
                sweep_once(self._sweep, "Periodic recovery", reachability)


def keep_time_once(keep_time: Callable[[], int], reachability: Reachability) -> bool:
    try:
        keep_time()
    except Exception as error:
        reachability.failed("Timekeeping", error)
        return False
    reachability.succeeded()
    return True


def sweep_once(
    sweep: Callable[[], list[Redispatch]], label: str, reachability: Reachability
) -> None:
    try:
        recovered = sweep()
    except Exception as error:
        reachability.failed(label, error)
        return
    reachability.succeeded()
    if recovered:
        logger.info("%s published %d workflow(s) again", label, len(recovered))
        if (probe := instrumentation.probe) is not None:
            probe.recovered(len(recovered))


class _DurableStep(bootsteps.StartStopStep):
    """A worker bootstep (after the pool): what every worker of the app does for
    celery_durable. Unlike ``worker_ready``, it runs in every kind of worker, the
    embedded test worker included, and is stopped on warm and cold shutdown."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        # Every step is constructed before any is started: before the pool forks.
        super().__init__(parent, **kwargs)
        # Before the consumer connects: a Redis restart must not stop the worker.
        if parent.app.connection_for_read().transport.driver_type == "redis":
            kombu_redis.install()
        hooks = _hooks_by_app.get(parent.app)
        if hooks is not None:
            hooks.before_pool(parent)

    def start(self, worker: Any) -> None:
        # In the thread that runs the consumer's loop next (the consumer step is last):
        # a threads worker must not stop consuming after a broker reconnection.
        consumer = getattr(worker, "consumer", None)
        if consumer is not None:
            celery_prefetch.install(consumer)
        _running_workers[worker.app] = worker
        hooks = _hooks_by_app.get(worker.app)
        if hooks is not None:
            hooks.on_ready(worker)

    def stop(self, worker: Any) -> None:
        _running_workers.pop(worker.app, None)
        hooks = _hooks_by_app.get(worker.app)
        if hooks is not None:
            hooks.on_shutdown()

    def terminate(self, worker: Any) -> None:
        self.stop(worker)


# The hooks of each app's current configuration (the step is added once per app), and
# the worker of each app running in this process, if any.
_hooks_by_app: weakref.WeakKeyDictionary[Celery, WorkerHooks] = weakref.WeakKeyDictionary()
_running_workers: weakref.WeakKeyDictionary[Celery, Any] = weakref.WeakKeyDictionary()


class WorkerHooks:
    """Connects a configuration to its Celery app's workers (a worker bootstep).

    Args:
        runtime: Returns the configuration current when a worker starts (a process may
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
        self._relay: EnqueueRelay | None = None
        self._metrics: MetricsExporter | None = None
        # The worker the sweeper runs for (and says is alive), while it runs.
        self._sweeping_for: tuple[WorkerRuntime, str] | None = None
        self._shut_down = False
        # Set when the worker stops: ends a start-up still waiting for the database.
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        app = owner.process.celery
        if app not in _hooks_by_app:
            app.steps["worker"].add(_DurableStep)
        _hooks_by_app[app] = self
        running = _running_workers.get(app)
        if running is not None:
            # DBOS configured again while this process runs a worker of the app: the
            # new configuration takes over its sweeping and timekeeping.
            self.on_ready(running)

    def _current(self, sender: Any) -> WorkerRuntime | None:
        runtime = self._runtime()
        app = getattr(sender, "app", None)
        if runtime is not self._owner or (app is not None and app is not runtime.process.celery):
            return None
        return runtime

    def before_pool(self, sender: Any) -> None:
        """Starts counting metrics, if the configuration exports them (the pool's
        children, forked next, count too)."""
        runtime = self._current(sender)
        port = None if runtime is None else runtime.process.config.get("metrics_port")
        if runtime is None or port is None or self._metrics is not None:
            return
        self._metrics = MetricsExporter(port, runtime.process.config.get("metrics_host", "0.0.0.0"))
        self._metrics.prepare()

    def on_ready(self, sender: Any) -> None:
        runtime = self._current(sender)
        if runtime is None:
            return
        unknown_tasks.install()
        if self._metrics is not None:
            self._metrics.serve()
        hostname = str(getattr(sender, "hostname", "") or "worker")
        with self._lock:
            self._shut_down = False
            self._stopping = threading.Event()
        threading.Thread(
            target=self._start, args=(runtime, hostname), name="celery-durable-start"
        ).start()

    def _start(self, runtime: WorkerRuntime, hostname: str) -> None:
        reachability = Reachability(runtime.process.database_label)
        # Until the database answers: one line each try, at growing intervals.
        while True:
            try:
                runtime.register_served(hostname)
            except Exception as error:
                delay = reachability.failed("Worker start-up registration", error)
                if self._stopping.wait(delay):
                    return
                continue
            reachability.succeeded()
            break
        # Broker-less enqueues are published from the start: the relay needs neither the
        # consumer nor the start-up recovery below.
        with self._lock:
            if self._shut_down:  # the worker stopped while this thread started up
                return
            if runtime.process.store.notifications.listen:  # else the sweep publishes them
                self._relay = EnqueueRelay(runtime.process.store, runtime.process.celery)
                self._relay.start()
        # The worker's sweeps also say which application version it runs, and consume
        # the queues registered at run time (from the start: see queue_consumers).
        sweep = functools.partial(
            _sweep_and_adopt, runtime, hostname, _running_workers.get(runtime.process.celery)
        )
        self._adopt_when_consuming(runtime)
        if self._recover_on_start:
            sweep_once(sweep, "Start-up recovery", reachability)
        with self._lock:
            if self._shut_down:  # the worker stopped while this thread started up
                return
            self._sweeper = Sweeper(sweep, self._interval_seconds, runtime.keep_time, reachability)
            self._sweeping_for = (runtime, hostname)
            self._sweeper.start()

    def _adopt_when_consuming(self, runtime: WorkerRuntime) -> None:
        """Consumes the registered queues once the worker's consumer is up (it starts
        after this bootstep), so a worker started after a queue was registered serves it
        from the start rather than from its first sweep."""
        worker = _running_workers.get(runtime.process.celery)
        consumer = getattr(worker, "consumer", None)
        for _ in range(_CONSUMER_WAIT_TICKS):
            if consumer is None or getattr(consumer, "task_consumer", None) is not None:
                break
            if self._stopping.wait(0.1):
                return
        _adopt_registered_queues(runtime, worker)

    def on_shutdown(self) -> None:
        with self._lock:
            self._shut_down = True
            self._stopping.set()
            sweeper, self._sweeper = self._sweeper, None
            relay, self._relay = self._relay, None
            metrics, self._metrics = self._metrics, None
            sweeping_for, self._sweeping_for = self._sweeping_for, None
        if metrics is not None:
            metrics.stop()
        if sweeper is not None:
            sweeper.stop()
        if relay is not None:
            relay.stop()
        if sweeping_for is not None:
            runtime, hostname = sweeping_for
            try:
                runtime.leave(hostname)
            except Exception as error:  # its row expires on its own
                logger.warning(
                    "Could not record that worker %s left: %s", hostname, one_line(error)
                )

    def disconnect(self) -> None:
        """Stops the sweeper and lets go of the app (a configuration replaced)."""
        self.on_shutdown()
        if _hooks_by_app.get(self._owner.process.celery) is self:
            del _hooks_by_app[self._owner.process.celery]


def _sweep_and_adopt(runtime: WorkerRuntime, hostname: str, worker: Any) -> list[Redispatch]:
    _adopt_registered_queues(runtime, worker)
    return runtime.recover(hostname)


def _adopt_registered_queues(runtime: WorkerRuntime, worker: Any) -> None:
    """A general-purpose worker consumes every queue registered at run time."""
    consumer = getattr(worker, "consumer", None)
    if consumer is None or getattr(consumer, "task_consumer", None) is None:
        return
    try:
        names = runtime.process.store.queues.registered_names()
    except Exception as error:  # the next sweep tries again
        logger.warning("Could not read the registered queues: %s", one_line(error))
        return
    added = queue_consumers.adopt_queues(consumer, names)
    if added:
        logger.info("Consuming registered queue(s): %s", ", ".join(added))


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

    sweep_task = app.task(name=RECOVERY_TASK_NAME, ignore_result=True, shared=False)(recovery_task)
    app.add_periodic_task(
        interval_seconds,
        sweep_task.s(),
        name=RECOVERY_TASK_NAME,
        # Sweeps that no worker took in time are useless: the next one comes.
        expires=interval_seconds,
    )
