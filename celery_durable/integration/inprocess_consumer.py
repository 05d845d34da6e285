"""The in-process worker's Celery consumer: tolerant of tasks registered as it starts.

A program's module-level decorators run before a ``celery worker`` starts, but a
program running the in-process worker (``DBOS.launch()``) may decorate a workflow or a
step (each registers a Celery task) on its own thread while the consumer builds its
task strategies from ``app.tasks`` on the worker's thread: Celery's loop then fails
with "dictionary changed size during iteration" and the worker stops for good. Here
the pass simply runs again; a task registered after it is added by the worker's
refresh (:meth:`InProcessWorker.refresh`).
"""

from __future__ import annotations

from celery.worker.consumer import Consumer

# Far more than registrations can interleave with one pass in practice.
_PASSES = 100


class InProcessConsumer(Consumer):
    """Celery's consumer, whose ``update_strategies`` survives a concurrent registration."""

    def update_strategies(self) -> None:
        for _ in range(_PASSES - 1):
            try:
                super().update_strategies()
                return
            except RuntimeError as error:
                if "changed size during iteration" not in str(error):
                    raise
        super().update_strategies()
