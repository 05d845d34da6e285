"""The callback tasks of Celery task calls are each app's own (integration/task_calls.py):
a second app (``DBOS(config=...)`` again, as DBOS's test fixtures do) gets its own, not
a shared copy of the first's (which Celery reports as DuplicateTaskNameWarning)."""

from __future__ import annotations

import warnings
from typing import Any

from celery import Celery

from celery_durable.integration.task_calls import (
    FAILED_TASK,
    SUCCEEDED_TASK,
    register_task_callbacks,
)


def never() -> Any:
    raise AssertionError("not called")


def test_each_app_has_its_own_callbacks_and_no_warning() -> None:
    first = Celery("first", set_as_current=False)
    register_task_callbacks(first, never)
    first.finalize()
    second = Celery("second", set_as_current=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_task_callbacks(second, never)
        second.finalize()
    for name in (SUCCEEDED_TASK, FAILED_TASK):
        assert second.tasks[name] is not first.tasks[name]
        assert second.tasks[name].app is second
