"""Workflows of the pool tests (tests/integration/test_pools.py), registered by
tests.integration.fault_app.

Side effects go to ``fault_effects`` as in tests.integration.fault_app, so a test counts attempts
and executions in PostgreSQL.
"""

from __future__ import annotations

import asyncio

import psycopg.waiting

from celery_durable import DBOS
from tests.integration.fault_app import effect, side_effect


@DBOS.step(max_attempts=3, interval_seconds=0.5, backoff_rate=2.0)
def fails_twice() -> str:
    """Attempt 2 starts >= 0.5 s after attempt 1 failed, attempt 3 >= 1 s after attempt 2."""
    status = DBOS.step_status
    assert status is not None and status.current_attempt is not None
    effect(DBOS.workflow_id, f"attempt{status.current_attempt}")
    if status.current_attempt < 2:
        raise ConnectionError(f"attempt {status.current_attempt} fails")
    return "third time"


@DBOS.workflow()
def retries_on_schedule() -> str:
    return fails_twice()


@DBOS.step()
async def async_nap(index: int) -> int:
    await asyncio.sleep(0.1)  # on the workflow's own loop (under gevent, its selector yields)
    effect(DBOS.workflow_id, str(index))
    return index


@DBOS.workflow()
async def async_steps() -> list[int]:
    """An ``async def`` workflow: an async step, then a synchronous one."""
    return [await async_nap(0), side_effect(1)]


@DBOS.workflow()
def psycopg_wait_function() -> str:
    """The wait function psycopg chose in the worker process (``wait_c`` blocks the
    whole thread; a Python one such as ``wait_poll`` waits through ``select``, which
    gevent's monkeypatching makes cooperative)."""
    return str(psycopg.waiting.wait.__name__)
