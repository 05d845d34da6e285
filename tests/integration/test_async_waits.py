"""Waits of async callers outside workflow code hold no thread while they wait: the
listener's thread wakes their event loop, so more of them run at once than the loop's
default executor has threads."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from celery_durable import DBOS, DBOSClient
from tests.conftest import DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")

WAITERS = 24
THREADS = 2
TIMEOUT = 1.0


@DBOS.workflow(name="async_waits_sets_event")
def async_waits_sets_event(key: str, value: str) -> None:
    DBOS.set_event(key, value)


def test_concurrent_get_event_async_waits_do_not_take_a_thread_each() -> None:
    client = DBOSClient(system_database_url=DATABASE_URL)

    async def waits() -> tuple[list[object], float, object]:
        # Two threads: holding one per wait, 24 waits of 1 s would take 12 s.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS))
        started = time.monotonic()
        missing = await asyncio.gather(
            *(client.get_event_async(str(uuid.uuid4()), "k", TIMEOUT) for _ in range(WAITERS))
        )
        elapsed = time.monotonic() - started
        # A set event still wakes a waiter at once (the notification, not the fallback).
        handle = client.enqueue(
            {"workflow_name": "async_waits_sets_event", "queue_name": TEST_QUEUE}, "k", "v"
        )
        value = await client.get_event_async(handle.workflow_id, "k", 60)
        return missing, elapsed, value

    try:
        missing, elapsed, value = asyncio.run(waits())
    finally:
        client.destroy()
    assert missing == [None] * WAITERS
    assert elapsed < TIMEOUT * 3, f"{WAITERS} waits of {TIMEOUT} s took {elapsed:.1f} s"
    assert value == "v"
