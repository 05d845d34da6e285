"""The workflow executions running in this process, so that a cancel made here reaches
them before their next step rather than after it.

Elsewhere a cancel is noticed when the workflow's next checkpoint is written (its
statement reads the status back): the step that was about to run still runs once.
DBOS checks the status before each step; a cancel made in the executing process (the
common case for a program with its own worker) now stops the workflow there too, at no
cost to the hot path: no statement, only a flag on the running context.
"""

from __future__ import annotations

import threading
import weakref

from celery_durable.engine.context import WorkflowContext

_lock = threading.Lock()
_live: weakref.WeakValueDictionary[str, WorkflowContext] = weakref.WeakValueDictionary()


def register(context: WorkflowContext) -> None:
    """Tracks an execution while its context lives (one per workflow in a process)."""
    with _lock:
        _live[context.workflow_id] = context


def cancel_requested(workflow_id: str) -> None:
    """The workflow was cancelled: its execution here, if any, stops before its next
    step (``StepRun``)."""
    with _lock:
        context = _live.get(workflow_id)
    if context is not None and not context.ended:
        context.cancel_requested = True
