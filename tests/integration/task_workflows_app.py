"""The workflow worker of tests/integration/test_celery_tasks.py: workflows that call the
plain tasks of ``tests.integration.plain_tasks_app`` by name (this app does not import
them; ``task_routes`` sends them to the plain workers' queue). No result backend.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, task_retry

from celery_durable import DBOS
from celery_durable.error import DBOSMaxStepRetriesExceeded

QUEUE = os.environ["TASKS_WORKFLOW_QUEUE"]
DIRECTORY = Path(os.environ["PLAIN_DIR"])
app = Celery("task_workflows", broker=os.environ["TASKS_BROKER_URL"])
app.conf.update(
    task_default_queue=QUEUE,
    task_routes={"plain.*": {"queue": os.environ["PLAIN_QUEUE"]}},
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    # Set by one test only: with a result backend, a failed task's error travels.
    result_backend=os.environ.get("TASKS_RESULT_BACKEND") or None,
)
DBOS(
    celery=app,
    config={
        "name": "task_workflows",
        "system_database_url": os.environ["TASKS_DATABASE_URL"],
        "recovery_interval_seconds": 1.0,
        "recovery_grace_seconds": 2.0,
    },
)


@DBOS.workflow()
def adds(x: int, y: int) -> int:
    first = DBOS.run_task(app.signature("plain.add", args=(x, y)))
    _die_once_after_the_first_call()
    return int(DBOS.run_task(app.signature("plain.add", args=(first, 1))))


@DBOS.workflow()
def flaky(key: str, failures: int, max_attempts: int) -> Any:
    try:
        return DBOS.run_task(
            app.signature("plain.flaky", args=(key, failures)),
            max_attempts=max_attempts,
            interval_seconds=0.2,
            backoff_rate=1.0,
        )
    except DBOSMaxStepRetriesExceeded as exhausted:
        return {"compensated": True, "errors": [str(error) for error in exhausted.errors]}


@DBOS.workflow()
def slow(key: str, seconds: float) -> str:
    """Replays (when a message comes) while its task is in flight, then waits for it."""
    handle = DBOS.start_task(app.signature("plain.slow", args=(key, seconds)))
    DBOS.recv("poke", timeout_seconds=60)
    return str(handle.get_result())


@DBOS.workflow()
def fan_out(count: int) -> list[int]:
    handles = [DBOS.start_task(app.signature("plain.add", args=(i, i))) for i in range(count)]
    return [int(handle.get_result()) for handle in handles]


@DBOS.workflow()
async def adds_async(x: int, y: int) -> int:
    handle = await DBOS.start_task_async(app.signature("plain.add", args=(x, y)))
    first = await handle.get_result_async()
    return int(await DBOS.run_task_async(app.signature("plain.add", args=(first, 1))))


@DBOS.workflow()
def lost_message(seconds: float) -> Any:
    """A task no worker serves: its attempts time out."""
    try:
        return DBOS.run_task(
            app.signature("nobody.serves", queue="nobody-serves-this"),
            max_attempts=2,
            interval_seconds=0.1,
            timeout_seconds=seconds,
        )
    except DBOSMaxStepRetriesExceeded as exhausted:
        return [str(error) for error in exhausted.errors]


# Each task execution of this worker, by task name and first argument (the tests tell
# a callback run as a task from one run in the worker of the task it follows).
@task_prerun.connect(weak=False)
def _note_execution(task: Any = None, args: Any = None, **_: Any) -> None:
    with (DIRECTORY / "executions").open("a") as executions:
        executions.write(f"{task.name if task else ''} {args!r}\n")


@task_postrun.connect(weak=False)
def _note_end(task: Any = None, state: Any = None, retval: Any = None, **_: Any) -> None:
    with (DIRECTORY / "ends").open("a") as ends:
        ends.write(f"{task.name if task else ''} {state} {retval!r}\n")


@task_retry.connect(weak=False)
def _note_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    with (DIRECTORY / "retries").open("a") as retries:
        retries.write(f"{getattr(request, 'task', '')} {reason!r}\n")


def _die_once_after_the_first_call() -> None:
    """Set by one test: the process that runs the workflow on after its first call's
    outcome was recorded (and the workflow claimed, in the same statement) dies there,
    once (the marker file says it happened)."""
    marker = DIRECTORY / "died-after-record"
    if os.environ.get("TASKS_DIE_AFTER_RECORD") and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="local.halve")
def halve(number: int) -> int:
    """A task of the workflow worker's own app (our callbacks are registered here)."""
    if number % 2:
        raise ValueError(f"{number} is odd")
    return number // 2


@DBOS.workflow()
def halves(number: int) -> Any:
    try:
        return DBOS.run_task(halve.s(number), retries_allowed=False)
    except Exception as failure:
        return f"failed: {failure}"


@DBOS.workflow()
def halves_thrice(number: int) -> int:
    """Three calls of a task this worker runs itself."""
    for _ in range(3):
        number = int(DBOS.run_task(halve.s(number)))
        _die_once_after_the_first_call()
    return number


@DBOS.workflow()
def halves_within_a_time_limit(number: int) -> int:
    """A task with a time limit: its worker does not run the workflow inside it."""
    return int(DBOS.run_task(halve.s(number).set(soft_time_limit=30)))


@DBOS.workflow()
def slow_without_timeout(key: str, seconds: float) -> str:
    return str(DBOS.run_task(app.signature("plain.slow", args=(key, seconds))))


@DBOS.workflow()
def slow_with_timeout(key: str, seconds: float, timeout_seconds: float) -> str:
    signature = app.signature("plain.slow", args=(key, seconds))
    return str(DBOS.run_task(signature, timeout_seconds=timeout_seconds, interval_seconds=0.5))
