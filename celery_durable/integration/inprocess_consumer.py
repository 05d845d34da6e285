"""The in-process worker's Celery consumer: tolerant of tasks registered as it starts.

A program's module-level decorators run before a ``celery worker`` starts, but a
program running the in-process worker (``DBOS.launch()``) may decorate a workflow or a
step (each registers a Celery task) on its own thread while the consumer works:

- Celery's consumer builds its task strategies from ``app.tasks`` on the worker's
  thread, and fails with "dictionary changed size during iteration" (the worker then
  stops for good) when a registration lands during that pass: here the pass runs again.
- A message for a task registered after the consumer's last pass (DBOS's tests define
  workflows right after their fixture launched, and start them at once) found the table
  without it, and Celery refused it as an unregistered task (it stayed ENQUEUED until
  the recovery sweep published it again): here the table builds a missing task's
  strategy the first time a message asks for it, when the app has that task by then.
"""

from __future__ import annotations

from typing import Any

from celery.app.trace import build_tracer
from celery.worker.consumer import Consumer

# Far more than registrations can interleave with one pass in practice.
_PASSES = 100


class _Strategies(dict[str, Any]):
    """Celery's name -> strategy table, completed from the app's tasks on demand."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__()
        self._consumer = consumer

    def __missing__(self, name: str) -> Any:
        consumer = self._consumer
        app = consumer.app
        task = app.tasks.get(name)
        if task is None:
            raise KeyError(name)  # really unregistered: Celery's own handling
        strategy = task.start_strategy(app, consumer)
        task.__trace__ = build_tracer(name, task, app.loader, consumer.hostname, app=app)
        self[name] = strategy
        return strategy


class InProcessConsumer(Consumer):
    """Celery's consumer, whose strategy table finds tasks registered late and whose
    ``update_strategies`` survives a concurrent registration."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = _Strategies(self)

    def update_strategies(self) -> None:
        for _ in range(_PASSES - 1):
            try:
                super().update_strategies()
                return
            except RuntimeError as error:
                if "changed size during iteration" not in str(error):
                    raise
        super().update_strategies()
