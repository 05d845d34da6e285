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
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

# Native thread id -> the lock of that OS thread's event loop. Bounded by the number
# of OS threads (ids are reused); setdefault is atomic, so no lock guards it.
_loop_locks: dict[int, Any] = {}


def run_in_own_loop(
    function: Callable[..., Coroutine[Any, Any, Any]], args: Any, kwargs: Any
) -> Any:
    """Runs ``function(*args, **kwargs)`` to its end in a new event loop, after any
    other loop of this OS thread has finished (see the module's docstring)."""
    lock = _loop_locks.setdefault(threading.get_native_id(), threading.RLock())
    with lock:
        return asyncio.run(function(*args, **kwargs))
