"""A Celery worker inside the program's own process, as DBOS's executor is.

A DBOS program calls ``DBOS.launch()`` and starts workflows; nothing else runs them.
Ported as it is, it gets this worker: a Celery ``WorkController`` with a thread pool,
consuming the app's queues in a thread of the program. It is the same worker ``celery
worker`` runs (the same bootsteps, recovery sweep and hooks), so a program can move its
workflows to ``celery worker`` processes later by turning it off
(``config["in_process_worker"] = False``).

Stopping it is a warm shutdown: it stops consuming and waits for the workflows it is
running, for as long as the caller allows (``DBOS.destroy(workflow_completion_timeout_sec=)``);
a workflow still running then finishes in its thread, or is recovered later like any
workflow of a worker that died.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery
from celery.app.registry import TaskRegistry
from celery.worker import state as worker_state

from celery_durable.integration import queue_consumers

logger = logging.getLogger(__name__)

# How long a consumer may take to notice it must stop (Celery's loop waits for messages
# two seconds at a time), beyond the time granted to running workflows.
_STOP_NOTICE_SECONDS = 3.0
# How long a refresh asked for while the worker starts waits for its consumer.
_READY_SECONDS = 60.0


def default_threads() -> int:
    """Python's (and so DBOS's) default for a thread pool's size."""
    return min(32, (os.cpu_count() or 1) + 4)


class _SnapshotTaskRegistry(TaskRegistry):
    """Celery's task registry, whose ``items()`` is a copy taken at once: the consumer
    iterates over it (``update_strategies``, at start and at each refresh) in its own
    thread while the program's thread may register a workflow defined meanwhile, which
    ended the worker with "dictionary changed size during iteration"."""

    def items(self) -> Any:
        return list(super().items())  # one C-level copy: no other thread runs during it


def _iterate_tasks_by_snapshot(app: Celery) -> None:
    tasks = app.tasks
    if type(tasks) is TaskRegistry:
        tasks.__class__ = _SnapshotTaskRegistry


def inside_celery_worker() -> bool:
    """Whether this process is ``celery worker`` (``celery -A module worker`` imports the
    program's module, which may call ``DBOS.launch()`` as it loads)."""
    command = Path(sys.argv[0]).name if sys.argv else ""
    is_celery = command == "celery" or sys.argv[0].endswith("celery/__main__.py")
    return is_celery and "worker" in sys.argv[1:]


class InProcessWorker:
    """One Celery worker of ``app`` running in a thread of this process, consuming the
    app's default queue and every declared ``Queue`` (``queue_names``)."""

    def __init__(self, app: Celery, *, threads: int, queue_names: Callable[[], list[str]]) -> None:
        self._app = app
        self._threads = threads
        self._queue_names = queue_names
        self._controller: Any = None
        self._thread: threading.Thread | None = None

    @property
    def hostname(self) -> str:
        """The worker's Celery hostname (the executor id it registers under)."""
        return f"in-process@{socket.gethostname()}:{os.getpid()}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Starts consuming (idempotent)."""
        if self.running:
            return
        if inside_celery_worker():
            logger.warning(
                "In-process worker not started: this process is a celery worker (call "
                'DBOS.launch() under `if __name__ == "__main__":`)'
            )
            return
        # A worker stopped earlier in this process left Celery's shutdown flag set.
        worker_state.should_stop = None
        # Workflows defined while the worker starts (or refreshes) register tasks while
        # its consumer iterates over them.
        _iterate_tasks_by_snapshot(self._app)
        # The pool's threads find the task of a message in the current app (Celery's
        # trace looks there for a task registered after the worker started).
        self._app.set_default()
        self._app.set_current()
        self._controller = self._app.WorkController(
            hostname=self.hostname,
            pool="threads",
            queues=self._consumed(),
            concurrency=self._threads,
            loglevel=logging.getLogger("celery").getEffectiveLevel(),
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(
            target=self._controller.start, name="celery-durable-worker", daemon=True
        )
        self._thread.start()
        logger.info("In-process worker started (%d threads)", self._threads)

    def _consumed(self) -> list[str]:
        return [self._app.conf.task_default_queue, *self._queue_names()]

    def refresh(self) -> None:
        """Lets the running worker accept tasks registered after it started (a workflow
        defined after ``DBOS.launch()``) and consume queues declared since; while its
        consumer is still starting, as soon as it is ready."""
        if not self.running:
            return
        if self._consumer_ready() is None:
            threading.Thread(
                target=self._refresh_when_ready, name="celery-durable-refresh", daemon=True
            ).start()
            return
        self._apply_refresh()

    def _consumer_ready(self) -> Any:
        consumer = getattr(self._controller, "consumer", None)
        ready = consumer is not None and getattr(consumer, "strategies", None)
        return consumer if ready and getattr(consumer, "task_consumer", None) else None

    def _refresh_when_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while self.running and time.monotonic() < deadline:
            if self._consumer_ready() is not None:
                self._apply_refresh()
                return
            time.sleep(0.05)

    def _apply_refresh(self) -> None:
        consumer = self._consumer_ready()
        if consumer is None:
            return
        consumer.update_strategies()
        # Queues are added on the consumer's own loop, as for every worker (py-amqp's
        # connection is not thread-safe).
        queue_consumers.adopt_queues(consumer, self._consumed())

    def stop(self, workflow_completion_timeout_sec: float = 0) -> bool:
        """Stops consuming and waits up to ``workflow_completion_timeout_sec`` for the
        running workflows.

        Returns:
            True when the worker stopped within the time (no workflow left running).
        """
        thread = self._thread
        if thread is None:
            return True
        worker_state.should_stop = 0  # type: ignore[assignment]  # warm, as on SIGTERM
        thread.join(max(workflow_completion_timeout_sec, 0) + _STOP_NOTICE_SECONDS)
        self._thread = None
        if thread.is_alive():
            logger.warning(
                "In-process worker: workflows still running after %s s; they finish in "
                "their threads or are recovered later",
                workflow_completion_timeout_sec,
            )
            return False
        worker_state.should_stop = None
        return True
