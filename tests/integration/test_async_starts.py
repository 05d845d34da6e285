"""``DBOS.start_workflow_async`` with the in-process worker runs the workflow in the
event loop that started it, as DBOS does (the two may share asyncio objects); a cancel
made in this process stops the workflow before its next step, as DBOS's check before
each step does. Each program runs in a process of its own (its own event loops), with
the in-process worker of ``DBOS.launch()``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from tests.conftest import BROKER_URL, DATABASE_URL, admin_url

ROOT = Path(__file__).resolve().parents[2]
# A Redis database of its own: the program's worker consumes Celery's default queue,
# which the session's worker may consume too on the tests' database.
PROGRAM_BROKER = str(make_url(BROKER_URL).set(database="12"))

PRELUDE = """
import asyncio, os, threading
from celery_durable import DBOS
from celery_durable.error import DBOSAwaitedWorkflowCancelledError

DBOS(config={"name": "async-starts", "system_database_url": os.environ["PROGRAM_DATABASE_URL"]})
calls = []

@DBOS.step()
async def note(name):
    calls.append(name)

@DBOS.step()
def note_sync(name):
    calls.append(name)
"""


@pytest.fixture
def program_database() -> Iterator[str]:
    """A database of its own (the program's ``DBOS.launch()`` creates it), dropped after."""
    url = make_url(DATABASE_URL)
    name = f"{url.database}_async_starts"
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()
    yield url.set(database=name).render_as_string(hide_password=False)
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(program_database: str, script: str) -> list[str]:
    env = {
        **os.environ,
        "PROGRAM_DATABASE_URL": program_database,
        "CELERY_BROKER_URL": PROGRAM_BROKER,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def test_a_workflow_started_async_shares_the_starters_asyncio_events(
    program_database: str,
) -> None:
    # In a loop of the worker's own, neither event would wake the other loop: it hung.
    output = _run(
        program_database,
        """
        started, go_on = asyncio.Event(), asyncio.Event()

        @DBOS.workflow()
        async def shares_events() -> str:
            await note("one")
            started.set()
            await go_on.wait()
            await note("two")
            return "done"

        async def main() -> None:
            handle = await DBOS.start_workflow_async(shares_events)
            await asyncio.wait_for(started.wait(), 30)
            go_on.set()
            print(await asyncio.wait_for(handle.get_result(), 30))

        DBOS.launch()
        asyncio.run(main())
        print(",".join(calls))
        DBOS.destroy()
        """,
    )
    assert output == ["done", "one,two"]


def test_a_cancel_made_here_stops_the_workflow_before_its_next_step(
    program_database: str,
) -> None:
    # The status came back only with the next step's checkpoint: "two" ran once.
    output = _run(
        program_database,
        """
        started, go_on = asyncio.Event(), asyncio.Event()
        sync_started, sync_go_on = threading.Event(), threading.Event()

        @DBOS.workflow()
        async def cancelled_between_steps() -> str:
            await note("one")
            started.set()
            await go_on.wait()
            await note("two")
            return "not cancelled"

        @DBOS.workflow()
        def cancelled_between_sync_steps() -> str:
            note_sync("sync-one")
            sync_started.set()
            sync_go_on.wait(30)
            note_sync("sync-two")
            return "not cancelled"

        async def main() -> None:
            handle = await DBOS.start_workflow_async(cancelled_between_steps)
            await asyncio.wait_for(started.wait(), 30)
            await DBOS.cancel_workflow_async(handle.workflow_id)
            go_on.set()
            try:
                await handle.get_result()
            except DBOSAwaitedWorkflowCancelledError:
                print("cancelled")

        DBOS.launch()
        asyncio.run(main())
        handle = DBOS.start_workflow(cancelled_between_sync_steps)
        assert sync_started.wait(30)
        DBOS.cancel_workflow(handle.workflow_id)
        sync_go_on.set()
        try:
            handle.get_result()
        except DBOSAwaitedWorkflowCancelledError:
            print("cancelled")
        # Resumed, a new execution runs the rest.
        print(DBOS.resume_workflow(handle.workflow_id).get_result(timeout=30))
        print(",".join(calls))
        DBOS.destroy()
        """,
    )
    assert output == [
        "cancelled",
        "cancelled",
        "not",
        "cancelled",
        "one,sync-one,sync-two",
    ]


def test_enqueued_workflows_run_in_the_loop_that_launched(program_database: str) -> None:
    # As DBOS: the loop that called DBOS.launch() runs the workflows the worker executes.
    output = _run(
        program_database,
        """
        @DBOS.workflow()
        async def which_loop() -> int:
            await asyncio.sleep(0)
            return id(asyncio.get_running_loop())

        async def main() -> None:
            DBOS.launch()
            await DBOS.register_queue_async("launch-loop-queue")
            handle = await DBOS.enqueue_workflow_async("launch-loop-queue", which_loop)
            result = await asyncio.wait_for(handle.get_result(), 30)
            print(result == id(asyncio.get_running_loop()))
            DBOS.destroy()

        asyncio.run(main())
        """,
    )
    assert output == ["True"]
