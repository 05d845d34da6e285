"""A program that runs its own worker (``DBOS(config=...)`` without ``celery=``) and
launches inside its event loop: its ``async def`` workflows run on that loop, as DBOS
3.4's do (engine/loops.py, integration/loop_start.py).

Each program runs in a process of its own (see test_porting.py), on a database of its
own, on the tests' broker with a queue of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BROKER_URL, DATABASE_URL, admin_url
from tests.integration.test_porting import PROGRAM, _env, _run


@pytest.fixture
def loop_program_database() -> Iterator[str]:
    """A database name of its own, dropped afterwards (the program creates it)."""
    url = make_url(DATABASE_URL)
    url = url.set(database=f"{url.database}_loop_program")
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


SCRIPT = f"""
import asyncio
import contextlib

import {PROGRAM} as program
from celery_durable import DBOS, SetWorkflowID
from celery_durable.error import DBOSAwaitedWorkflowCancelledError

release: asyncio.Event


@DBOS.workflow()
async def waits_for_release() -> int:
    await release.wait()  # an Event of the caller's loop
    return id(asyncio.get_running_loop())


left: list[str] = []


@DBOS.step()
async def a_step() -> None:
    pass


@DBOS.workflow()
async def cancelled_at_release() -> None:
    await a_step()
    await release.wait()
    try:
        await a_step()  # cancelled meanwhile: it does not run
    finally:
        left.append("left")


@DBOS.workflow()
async def sleeps() -> int:
    await DBOS.sleep_async(0.1)
    return id(asyncio.get_running_loop())


@DBOS.workflow()
async def child() -> int:
    return 7


@DBOS.workflow()
async def calls_a_child() -> int:
    return await child()  # run inline in a thread, while this loop waits for it


closed: list[str] = []


async def source():
    try:
        yield "ready"
    finally:
        await asyncio.sleep(0)  # its cleanup needs its loop
        closed.append("closed")


stream = source()


@DBOS.workflow()
async def consume_one() -> str:
    return await anext(stream)  # left suspended on the loop the workflow ran on


def launch() -> None:
    # A queue of its own on the shared broker: no other worker takes its messages.
    DBOS._service().celery.conf.task_default_queue = "loop-program"
    DBOS.launch()


async def start_from_a_loop() -> None:
    global release
    release = asyncio.Event()
    loop_id = id(asyncio.get_running_loop())
    with SetWorkflowID("started-on-loop"):
        handle = await DBOS.start_workflow_async(waits_for_release)
    waiter = asyncio.create_task(handle.get_result())
    # A waiter given up (timed out, cancelled) leaves the workflow and the others be.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(handle.get_result(), timeout=0.05)
    cancelled = asyncio.create_task(handle.get_result())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    print("started", await asyncio.wait_for(waiter, timeout=30) == loop_id)
    # Started again with its id: the recorded outcome, not a second run.
    with SetWorkflowID("started-on-loop"):
        again = await DBOS.start_workflow_async(waits_for_release)
    print("again", await asyncio.wait_for(again.get_result(), timeout=30) == loop_id)
    # The handle's get_result waits for the execution to end, then reads the outcome.
    release = asyncio.Event()
    handle = await DBOS.start_workflow_async(cancelled_at_release)
    while len(await DBOS.list_workflow_steps_async(handle.workflow_id)) < 1:
        await asyncio.sleep(0.01)
    await DBOS.cancel_workflow_async(handle.workflow_id)
    asyncio.get_running_loop().call_later(0.5, release.set)
    with contextlib.suppress(DBOSAwaitedWorkflowCancelledError):
        await asyncio.wait_for(handle.get_result(), timeout=30)
    print("cancelled", left, len(await DBOS.list_workflow_steps_async(handle.workflow_id)))


async def launch_in_a_loop() -> None:
    launch()
    loop_id = id(asyncio.get_running_loop())
    # Through the broker, run by the worker's thread: on this loop (its sleep frees
    # the worker; it runs on this loop again after it).
    queued = await DBOS.retrieve_workflow_async(DBOS.start_workflow(sleeps).workflow_id)
    print("worker", await asyncio.wait_for(queued.get_result(), timeout=30) == loop_id)
    # A direct call's child does not run on the adopted loop, which waits for it.
    print("direct", await calls_a_child())


launch()  # outside any loop, as DBOS's test fixture does
asyncio.run(start_from_a_loop())
# A worker thread's loop outlives the workflow: destroy() finalizes what it left there.
print("generator", DBOS.start_workflow(consume_one).get_result(timeout=30), len(closed))
DBOS.destroy()
print("destroyed", len(closed))
DBOS(config=program.config)
asyncio.run(launch_in_a_loop())
DBOS.destroy()
"""


def test_async_workflows_run_on_the_loop_the_program_launched_in(
    loop_program_database: str,
) -> None:
    env = {**_env(loop_program_database), "CELERY_BROKER_URL": BROKER_URL}
    output = _run(SCRIPT, env)
    assert output.split() == [
        "started",
        "True",
        "again",
        "True",
        "cancelled",
        "['left']",
        "1",
        "generator",
        "ready",
        "0",
        "destroyed",
        "1",
        "worker",
        "True",
        "direct",
        "7",
    ]
