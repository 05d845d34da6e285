"""Celery's own "Task name[id] retry: ..." line, at DEBUG for routine waits.

Celery logs every ``Task.retry`` at INFO (``celery.app.trace``). A workflow task retries
for news (a step's attempt failed: it stays at INFO) and for routine waits (a sleep, a
message, a child workflow, a queue's limits, another version's worker): seven queued
workflows would write dozens of INFO lines a minute. The task marks its routine retries
here; a filter on Celery's logger shows their line at DEBUG (when DEBUG is on) instead.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from celery.exceptions import Retry
from celery.utils.saferepr import saferepr

TRACE_LOGGER = "celery.app.trace"

# (task id, the retry's text) of the routine retries not yet logged, oldest first.
_routine: OrderedDict[tuple[str, str], None] = OrderedDict()
_lock = threading.Lock()
_MAX_PENDING = 10_000
# Celery's default ``result_repr_maxsize``: the length of the return value it logs.
RESULT_REPR_MAXSIZE = 1024


def mark_routine(task_id: str | None, retry: Retry) -> Retry:
    """Records that ``retry`` of ``task_id`` is routine; returns it (to be raised)."""
    trace = logging.getLogger(TRACE_LOGGER)
    install()
    if task_id is not None and trace.isEnabledFor(logging.INFO):
        with _lock:
            _routine[(task_id, str(retry))] = None
            while len(_routine) > _MAX_PENDING:
                _routine.popitem(last=False)
    return retry


def routine_return(task_id: str | None, value: str) -> str:
    """Records that ``task_id`` returns ``value`` routinely (a delivery that parked its
    workflow): Celery's "succeeded" line for it is lowered as a routine retry's is."""
    if task_id is not None and logging.getLogger(TRACE_LOGGER).isEnabledFor(logging.INFO):
        install()
        with _lock:
            _routine[(task_id, saferepr(value, RESULT_REPR_MAXSIZE))] = None
            while len(_routine) > _MAX_PENDING:
                _routine.popitem(last=False)
    return value


class RoutineRetryFilter(logging.Filter):
    """Lowers Celery's retry line of a routine retry to DEBUG (or drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if record.levelno != logging.INFO or not isinstance(data, dict):
            return True
        text = data["return_value"] if "return_value" in data else data.get("exc")
        key = (str(data.get("id")), str(text))
        with _lock:
            if key not in _routine:
                return True
            del _routine[key]
        if not logging.getLogger(TRACE_LOGGER).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


_installed = threading.Event()


def install() -> None:
    """Adds the filter to Celery's trace logger (once per process)."""
    if _installed.is_set():
        return
    with _lock:
        if not _installed.is_set():
            logging.getLogger(TRACE_LOGGER).addFilter(RoutineRetryFilter())
            _installed.set()
