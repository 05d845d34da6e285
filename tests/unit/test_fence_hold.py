"""A delivery that finds its workflow held by another execution of its process waits
for it to let go (a stale delivery's claim lets go within a round trip) before it
counts as busy: the current generation's delivery is not dropped beside a stale one."""

from __future__ import annotations

import threading
import time

from celery_durable.store.fence import Fence


def _fence() -> Fence:
    def connect() -> None:
        raise AssertionError("holding a workflow opens no connection")

    return Fence(connect, [])  # type: ignore[arg-type]


def test_a_hold_waits_for_the_holder_to_let_go() -> None:
    fence = _fence()
    assert fence.hold("wf")
    threading.Timer(0.1, fence.let_go, args=("wf",)).start()
    started = time.monotonic()
    assert fence.hold("wf", wait_seconds=5.0)
    assert time.monotonic() - started < 4.0


def test_a_hold_still_held_after_the_wait_is_busy() -> None:
    fence = _fence()
    assert fence.hold("wf")
    assert not fence.hold("wf")  # no wait: busy at once
    assert not fence.hold("wf", wait_seconds=0.05)
    assert fence.hold("other")


def test_a_hold_waiting_goes_on_when_the_fence_is_dropped() -> None:
    fence = _fence()
    assert fence.hold("wf")

    def lose_the_connection() -> None:  # as Fence.send does, under the fence's lock
        with fence._lock:
            fence._discard()

    threading.Timer(0.1, lose_the_connection).start()  # every hold goes with it
    started = time.monotonic()
    assert fence.hold("wf", wait_seconds=5.0)
    assert time.monotonic() - started < 4.0
