"""The event loop of an ``async def`` workflow run from synchronous code (a worker).

When ``DBOS.launch()`` ran inside an event loop that still runs (the program's main
loop, adopted as DBOS 3.4 adopts it), a workflow that a worker thread of this process
executes runs on that loop, as a task, while the thread waits for it: the program's
loop-bound objects (``asyncio.Event``, clients, ...) work in its workflows.

Otherwise, in a program's own worker (``keep_loops``), each worker thread keeps one
event loop for the async workflows it runs, as DBOS keeps its background loop: what a
workflow leaves suspended on it (an async generator it iterated) is finalized when the
program calls ``DBOS.destroy()`` (``finalize_kept_loops``), not when the workflow
returns; tasks a workflow leaves behind are still cancelled when it ends. Under
``celery worker``, each such execution runs in an event loop of its own
(``asyncio.run``) in the thread that executes it.

asyncio keeps "the running loop" per OS thread, and under gevent every greenlet of a
worker shares one OS thread: while one workflow's loop waits in its (monkeypatched,
cooperative) selector, another greenlet's ``asyncio.run`` would find that loop running
and raise ``RuntimeError``, failing its workflow. So the loops of one OS thread take
turns: a re-entrant lock per native thread id, created at first use, after gevent's
monkeypatching, so under gevent it is a greenlet lock and the others wait
cooperatively; in a thread pool each thread has its own, never contended. Re-entrant
so that an ``asyncio.run`` nested in a running loop still raises at once instead of
waiting for itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from celery_durable.core.signals import RescheduleWorkflow

# Native thread id -> the lock of that OS thread's event loop. Bounded by the number
# of OS threads (ids are reused); setdefault is atomic, so no lock guards it.
_loop_locks: dict[int, Any] = {}

# The adopted main loop and the process that adopted it (a forked child inherits the
# object, not the thread that runs it).
_adopted: tuple[asyncio.AbstractEventLoop, int] | None = None

# Native thread id -> the loop that thread keeps, while loops are kept (keep_loops).
_kept: dict[int, asyncio.AbstractEventLoop] = {}
_keeping = False
# How long DBOS.destroy() waits for the kept loops' async generators to close.
_FINALIZE_SECONDS = 10.0

# How often a thread waiting on the adopted loop checks that the loop still runs.
_CHECK_SECONDS = 1.0
# When the adopted loop stopped under a workflow: run it again this soon.
_LOOP_STOPPED_RETRY_SECONDS = 1.0


def adopt_running_loop() -> None:
    """Makes the running event loop, if any, the one this process's workflows run on
    (``DBOS.launch()`` calls it)."""
    global _adopted
    try:
        _adopted = (asyncio.get_running_loop(), os.getpid())
    except RuntimeError:
        _adopted = None


def release_adopted_loop() -> None:
    """Workflows run in loops of their own again (``DBOS.destroy()``)."""
    global _adopted
    _adopted = None


def keep_loops() -> None:
    """Worker threads keep their event loops from now on (a program's own worker)."""
    global _keeping
    _keeping = True


def finalize_kept_loops() -> None:
    """Closes the kept loops, finalizing the async generators left on them (the
    program's ``DBOS.destroy()``), in a thread of its own: the caller may be running a
    loop. A loop still running a workflow is left to it."""
    global _keeping
    _keeping = False
    loops = list(_kept.values())
    _kept.clear()
    closer = threading.Thread(target=_close_all, args=(loops,), name="close-workflow-loops")
    closer.start()
    closer.join(_FINALIZE_SECONDS)


def _close_all(loops: list[asyncio.AbstractEventLoop]) -> None:
    for loop in loops:
        if loop.is_running() or loop.is_closed():
            continue
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def adopted_loop() -> asyncio.AbstractEventLoop | None:
    """The adopted loop, if it still runs in this process."""
    if _adopted is None:
        return None
    loop, pid = _adopted
    return loop if pid == os.getpid() and loop.is_running() and not loop.is_closed() else None


def run_in_own_loop(
    function: Callable[..., Coroutine[Any, Any, Any]],
    args: Any,
    kwargs: Any,
    *,
    adopted: bool = False,
) -> Any:
    """Runs ``function(*args, **kwargs)`` to its end: with ``adopted``, on the adopted
    loop if it runs (and is not this thread's), else in a new event loop, after any
    other loop of this OS thread has finished (see the module's docstring).

    Raises:
        RescheduleWorkflow: the adopted loop stopped before the workflow ended (it runs
            again from its checkpoints).
    """
    loop = adopted_loop() if adopted else None
    if loop is not None and not _runs_here(loop):
        return _run_on(loop, function(*args, **kwargs))
    thread_id = threading.get_native_id()
    lock = _loop_locks.setdefault(thread_id, threading.RLock())
    with lock:
        if not _keeping:
            return asyncio.run(function(*args, **kwargs))
        own = _kept.get(thread_id)
        if own is None or own.is_closed():
            own = _kept[thread_id] = asyncio.new_event_loop()
        return _run_kept(own, function(*args, **kwargs))


def _run_kept(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` on a kept loop, less its end: the tasks the coroutine left are
    cancelled, its async generators are left for ``finalize_kept_loops``."""
    try:
        return loop.run_until_complete(coroutine)
    finally:
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _run_on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Runs the coroutine as a task of ``loop`` (in this thread's context: the task
    sees the running workflow) and waits for it here."""
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError:  # closed in the meantime
        coroutine.close()
        raise _loop_stopped() from None
    while not future.done():
        concurrent.futures.wait([future], timeout=_CHECK_SECONDS)
        if not future.done() and not loop.is_running():
            future.cancel()
    if future.cancelled():
        # The loop shut down (and cancelled its tasks): not the workflow's outcome.
        raise _loop_stopped()
    return future.result()


def _loop_stopped() -> RescheduleWorkflow:
    return RescheduleWorkflow(
        _LOOP_STOPPED_RETRY_SECONDS, "the program's event loop stopped", routine=True
    )
