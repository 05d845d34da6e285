"""The event loop of an ``async def`` workflow run from synchronous code (a worker).

Each such execution runs in an event loop of its own (``asyncio.run``) in the thread
that executes it. asyncio keeps "the running loop" per OS thread, and under gevent
every greenlet of a worker shares one OS thread: while one workflow's loop waits in
its (monkeypatched, cooperative) selector, another greenlet's ``asyncio.run`` would
find that loop running and raise ``RuntimeError``, failing its workflow. So the loops
of one OS thread take turns: a re-entrant lock per native thread id, created at first
use, after gevent's monkeypatching, so under gevent it is a greenlet lock and the
others wait cooperatively; in a thread pool each thread has its own, never contended.
Re-entrant so that an ``asyncio.run`` nested in a running loop still raises at once
instead of waiting for itself.

A workflow started with ``DBOS.start_workflow_async`` runs, as in DBOS, in the event
loop that started it, when this process's worker executes it and that loop still runs:
the starter remembers the loop (:func:`remember_home_loop`) before publishing, and the
worker's thread hands the coroutine to it (``run_coroutine_threadsafe``) and waits. So
the workflow and its starter may share asyncio objects (an ``asyncio.Event`` set by one
and awaited by the other), which belong to one loop and would never wake the other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from celery_durable.core.signals import RescheduleWorkflow

# Native thread id -> the lock of that OS thread's event loop. Bounded by the number
# of OS threads (ids are reused); setdefault is atomic, so no lock guards it.
_loop_locks: dict[int, Any] = {}

# Workflow id -> the loop that started it (weakly: a closed loop's program is gone).
# Bounded: a workflow another process's worker ran is never forgotten here, so the
# oldest go first.
_HOME_LOOPS_KEPT = 10_000
_home_loops: OrderedDict[str, weakref.ref[asyncio.AbstractEventLoop]] = OrderedDict()
_home_loops_lock = threading.Lock()
# How often a worker waiting for a workflow in its starting loop checks that it runs.
_HOME_LOOP_CHECK_SECONDS = 0.5


def remember_home_loop(workflow_id: str, loop: asyncio.AbstractEventLoop) -> None:
    """Runs the workflow in ``loop`` when this process executes it (while it runs)."""
    with _home_loops_lock:
        _home_loops[workflow_id] = weakref.ref(loop)
        _home_loops.move_to_end(workflow_id)
        while len(_home_loops) > _HOME_LOOPS_KEPT:
            _home_loops.popitem(last=False)


def forget_home_loop(workflow_id: str) -> None:
    with _home_loops_lock:
        _home_loops.pop(workflow_id, None)


def _home_loop(workflow_id: str) -> asyncio.AbstractEventLoop | None:
    """The workflow's starting loop, if it still runs in another thread."""
    with _home_loops_lock:
        reference = _home_loops.get(workflow_id)
    loop = reference() if reference is not None else None
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    return None if running is loop else loop


def run_workflow_coroutine(
    workflow_id: str,
    function: Callable[..., Coroutine[Any, Any, Any]],
    args: Any,
    kwargs: Any,
) -> Any:
    """Runs an ``async def`` workflow to its end from this (synchronous) thread: in the
    loop that started it if that still runs, else in a loop of its own."""
    loop = _home_loop(workflow_id)
    if loop is None:
        return run_in_own_loop(function, args, kwargs)
    # The coroutine's task copies this thread's context (the running workflow's).
    future = asyncio.run_coroutine_threadsafe(function(*args, **kwargs), loop)
    try:
        output = _outcome(future, loop)
    except RescheduleWorkflow:
        raise  # it runs again later (a retry, a wait): in its starting loop if it runs
    except BaseException:
        forget_home_loop(workflow_id)
        raise
    forget_home_loop(workflow_id)
    return output


def _outcome(future: concurrent.futures.Future[Any], loop: asyncio.AbstractEventLoop) -> Any:
    while True:
        try:
            return future.result(timeout=_HOME_LOOP_CHECK_SECONDS)
        except concurrent.futures.TimeoutError:
            if not loop.is_closed() and loop.is_running():
                continue
            future.cancel()
        except concurrent.futures.CancelledError:
            pass
        # The starting loop ended (or cancelled the workflow's task as it shut down)
        # before the workflow did: as after a crash, it runs again, in a loop of its own.
        raise RescheduleWorkflow(0.0, "the event loop that started it has stopped")


def run_in_own_loop(
    function: Callable[..., Coroutine[Any, Any, Any]], args: Any, kwargs: Any
) -> Any:
    """Runs ``function(*args, **kwargs)`` to its end in a new event loop, after any
    other loop of this OS thread has finished (see the module's docstring)."""
    lock = _loop_locks.setdefault(threading.get_native_id(), threading.RLock())
    with lock:
        return asyncio.run(function(*args, **kwargs))
