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
Any other ``async def`` workflow this process's worker runs (enqueued, recovered,
started synchronously) goes, as in DBOS, to the loop that called ``DBOS.launch()`` if
there was one and it still runs (:func:`adopt_main_loop`). A loop that has not begun
the workflow within 5 s (its thread blocked, perhaps on a synchronous ``get_result`` of
this very workflow) is given up on: the workflow runs in a loop of its own.
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
# The loop that called DBOS.launch() (see adopt_main_loop).
_main_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
# How long a loop may take to begin a workflow handed to it before the worker runs it
# in a loop of its own (a loop whose thread blocks, on a synchronous get_result of this
# workflow for instance, would never begin it).
_HOME_LOOP_START_SECONDS = 5.0
# How often a worker waiting for a workflow in its starting loop checks that it runs.
_HOME_LOOP_CHECK_SECONDS = 0.5


def adopt_main_loop() -> None:
    """The loop running in this thread, if any, runs the workflows that have no loop of
    their own (``DBOS.launch()`` calls it, as DBOS adopts its caller's loop)."""
    global _main_loop
    try:
        _main_loop = weakref.ref(asyncio.get_running_loop())
    except RuntimeError:
        _main_loop = None


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
    """The workflow's starting loop (else the main loop), if it still runs in another
    thread."""
    with _home_loops_lock:
        reference = _home_loops.get(workflow_id) or _main_loop
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
    loop that started it (else the main loop) if that still runs, else in a loop of its
    own."""
    loop = _home_loop(workflow_id)
    if loop is None:
        return run_in_own_loop(function, args, kwargs)
    start = _Start()

    async def started_there() -> Any:
        if not start.begin():
            return None  # given up on: it runs in a loop of its own instead
        return await function(*args, **kwargs)

    # The coroutine's task copies this thread's context (the running workflow's).
    future = asyncio.run_coroutine_threadsafe(started_there(), loop)
    if not start.began.wait(_HOME_LOOP_START_SECONDS) and start.give_up():
        # That loop is blocked (its thread may be waiting for this very workflow).
        future.cancel()
        forget_home_loop(workflow_id)
        return run_in_own_loop(function, args, kwargs)
    try:
        output = _outcome(future, loop)
    except RescheduleWorkflow:
        raise  # it runs again later (a retry, a wait): in its starting loop if it runs
    except BaseException:
        forget_home_loop(workflow_id)
        raise
    forget_home_loop(workflow_id)
    return output


class _Start:
    """Whether a workflow handed to another loop began there, or was given up on first
    (one or the other, never both)."""

    def __init__(self) -> None:
        self.began = threading.Event()
        self._given_up = False
        self._lock = threading.Lock()

    def begin(self) -> bool:
        with self._lock:
            if self._given_up:
                return False
            self.began.set()
            return True

    def give_up(self) -> bool:
        with self._lock:
            if self.began.is_set():
                return False
            self._given_up = True
            return True


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
