"""Workflows this process cancelled, noticed before their next step.

DBOS 3.4 reads a workflow's status before each step, so a step that starts after
``cancel_workflow`` never runs. Here the status comes back with each checkpoint's
statement (no read of its own), which notices a cancel only after the next step ran.
A cancel made in this process is known here at once: the operator notes it, and a step
of that workflow executing in this process stops before it starts. A cancel made
elsewhere is still noticed at the next checkpoint.

A preemptible step of the workflow running in this process is told at once as well
(:func:`watching`), instead of at its next read of the status (once a second).

A new execution (a claim: after ``resume_workflow``, a recovery) forgets the note.
Bounded: the oldest notes go first (a workflow whose execution never comes back here
would otherwise be kept forever).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

from celery_durable.core.signals import WorkflowCancelled

_KEPT = 10_000
_cancelled: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
# Workflow id -> what to call when this process cancels it (preemptible steps' watchers).
_watchers: dict[str, list[Callable[[], None]]] = {}


def note_cancelled(workflow_id: str) -> None:
    with _lock:
        _cancelled[workflow_id] = None
        _cancelled.move_to_end(workflow_id)
        while len(_cancelled) > _KEPT:
            _cancelled.popitem(last=False)
        told = list(_watchers.get(workflow_id, ()))
    for tell in told:
        tell()


@contextlib.contextmanager
def watching(workflow_id: str, tell: Callable[[], None]) -> Iterator[None]:
    """Calls ``tell`` (from the cancelling thread) if this process cancels the workflow
    while the block runs."""
    with _lock:
        _watchers.setdefault(workflow_id, []).append(tell)
    try:
        yield
    finally:
        with _lock:
            told = _watchers.get(workflow_id, [])
            told.remove(tell)
            if not told:
                _watchers.pop(workflow_id, None)


def note_claimed(workflow_id: str) -> None:
    """A new execution of the workflow runs: an earlier cancel no longer applies."""
    with _lock:
        _cancelled.pop(workflow_id, None)


def cancelled(workflow_id: str) -> bool:
    """Whether this process cancelled the workflow since its execution began."""
    return workflow_id in _cancelled


def stop_if_cancelled_here(workflow_id: str) -> None:
    """Raises ``WorkflowCancelled`` if this process cancelled the workflow since its
    execution began."""
    if cancelled(workflow_id):
        raise WorkflowCancelled(workflow_id)
