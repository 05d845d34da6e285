"""The in-process worker's consumer (integration/inprocess_consumer.py) builds its task
strategies even when a task is registered while it does (a workflow or step decorated
on the program's thread as the worker starts); Celery's own consumer stops then."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery, Task
from celery.worker.consumer import Consumer

from celery_durable.integration.inprocess_consumer import InProcessConsumer


def noop() -> None:
    return None


def app_registering_during_the_pass() -> Celery:
    """An app whose first task registers another the first time its strategy is built:
    the registration lands while ``update_strategies`` iterates ``app.tasks``."""
    app = Celery("inprocess_consumer_test", broker="memory://", set_as_current=False)
    registered: list[str] = []

    class Registering(Task):  # type: ignore[type-arg]
        def start_strategy(self, app: Celery, consumer: Any, **kwargs: Any) -> Any:
            if not registered:
                registered.append("late")
                app.task(name="late_task", shared=False)(noop)
            return super().start_strategy(app, consumer, **kwargs)

    app.task(name="first_task", base=Registering, shared=False)(noop)
    app.finalize()
    return app


def consumer(cls: type[Consumer], app: Celery) -> Consumer:
    """The consumer of a real worker (never started: no broker is reached)."""
    worker = app.WorkController(
        hostname="test@inprocess",
        pool="solo",
        consumer_cls=cls,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    built: Consumer = worker.consumer  # type: ignore[attr-defined]  # set by its blueprint
    assert type(built) is cls
    return built


def test_celerys_consumer_fails_when_a_task_is_registered_during_the_pass() -> None:
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        consumer(Consumer, app_registering_during_the_pass()).update_strategies()


def test_the_in_process_consumer_passes_again_and_knows_every_task() -> None:
    app = app_registering_during_the_pass()
    built = consumer(InProcessConsumer, app)
    built.update_strategies()
    assert {"first_task", "late_task"} <= set(built.strategies)  # type: ignore[attr-defined]
