"""The in-process worker's consumer: it serves a workflow registered after it started,
even when the workflow's first message arrives before anything told it.

A workflow defined after ``DBOS.launch()`` (DBOS's tests define theirs in the test
body, right after their fixture launched) is added to the app's tasks at once, and the
in-process worker is asked to refresh its consumer's table of task strategies. While
the consumer is still starting, that refresh waits for it; a message published in
between found the table without the task, and Celery refused it as an unregistered
task (it stayed ENQUEUED until the recovery sweep published it again). Here the table
builds a missing task's strategy the first time a message asks for it, as Celery's
``update_strategies`` builds every one, when the app has that task by then.
"""

from __future__ import annotations

from typing import Any

from celery.app.trace import build_tracer
from celery.worker.consumer.consumer import Consumer


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


class LateTasksConsumer(Consumer):
    """Celery's consumer with a strategy table that finds tasks registered late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = _Strategies(self)
