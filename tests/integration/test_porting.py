"""Porting without learning Celery first: ``DBOS(config=...)`` without ``celery=`` builds
the app, ``DBOS.launch()`` runs a worker in the program's process, DBOS's own pytest
fixture works, and the program's module still serves ``celery -A module worker``.

DBOS is process-wide, so each program runs in a process of its own, on a database and
a Redis database of its own (Redis database 13: no other test's worker consumes it).
"""

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
from celery import Celery
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from celery_durable.service.tools import migrate_databases
from tests.conftest import BROKER_URL, DATABASE_URL, admin_url
from tests.integration.subprocesses import CELERY, ROOT, spawn

PROGRAM = "tests.integration.porting.program"
PROGRAM_BROKER = str(make_url(BROKER_URL).set(database="13"))


@pytest.fixture
def program_database() -> Iterator[str]:
    """A database name of its own, dropped afterwards (the program creates it)."""
    url = str(make_url(DATABASE_URL).set(database=f"{make_url(DATABASE_URL).database}_porting"))
    url = make_url(url).render_as_string(hide_password=False)
    name = make_url(url).database
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()
    yield url
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PORTING_DATABASE_URL": database_url,
        "CELERY_BROKER_URL": PROGRAM_BROKER,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def _run(script: str, env: dict[str, str], timeout: float = 90) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_launch_runs_the_workflows_in_the_programs_process(program_database: str) -> None:
    output = _run(
        f"""
        from celery_durable import DBOS
        from {PROGRAM} import increment
        DBOS.launch()  # creates the missing database, then starts the worker
        print(DBOS.start_workflow(increment, 41).get_result(timeout=30))
        DBOS.destroy()
        """,
        _env(program_database),
    )
    assert output.split() == ["42"]


def test_without_any_broker_the_program_runs_on_an_embedded_one(program_database: str) -> None:
    env = _env(program_database)
    for name in ("CELERY_BROKER_URL", "CELERY_DURABLE_BROKER_URL"):
        env.pop(name, None)
    output = _run(
        f"""
        from celery_durable import DBOS
        from {PROGRAM} import increment
        import {PROGRAM} as program
        DBOS.launch()
        print(DBOS.start_workflow(increment, 1).get_result(timeout=30))
        print(program.celery.conf.broker_url.split("://")[0])
        DBOS.destroy()
        """,
        env,
    )
    assert output.split() == ["2", "redis+socket"]


def test_in_process_worker_false_leaves_the_workflows_to_celery_workers(
    program_database: str,
) -> None:
    output = _run(
        f"""
        from celery_durable import DBOS
        from {PROGRAM} import increment
        DBOS.launch()
        handle = DBOS.start_workflow(increment, 41)
        try:
            handle.get_result(timeout=5)
        except TimeoutError:
            print(handle.get_status().status)
        DBOS.destroy()
        """,
        _env(program_database, PORTING_IN_PROCESS_WORKER="0"),
    )
    assert output.split() == ["ENQUEUED"]


@pytest.mark.parametrize(("listen", "listening"), [("1", True), ("0", False)])
def test_use_listen_notify_false_reads_by_polling_and_listens_to_nothing(
    program_database: str, listen: str, listening: bool
) -> None:
    output = _run(
        f"""
        import psycopg
        from celery_durable import DBOS
        from {PROGRAM} import count_to, config
        DBOS.launch()
        handle = DBOS.start_workflow(count_to, 3)
        print(list(DBOS.read_stream(handle.workflow_id, "count")))
        with psycopg.connect(config["system_database_url"]) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            ).fetchone()
        print(row[0] > 0)
        DBOS.destroy()
        """,
        _env(program_database, PORTING_USE_LISTEN_NOTIFY=listen),
    )
    assert output.split() == ["[1,", "2,", "3]", str(listening)]


def test_listen_queues_makes_the_in_process_worker_consume_only_the_listed_queues(
    program_database: str,
) -> None:
    output = _run(
        f"""
        import time
        from celery_durable import DBOS, Queue
        from celery_durable.error import DBOSException
        import {PROGRAM} as program
        from {PROGRAM} import increment

        Queue("declared")  # declared in code, not listed: not consumed either
        DBOS.listen_queues(["one"])
        DBOS.launch()
        try:
            DBOS.listen_queues(["two"])
        except DBOSException as error:
            print("refused:", "after DBOS is launched" in str(error))
        DBOS.register_queue("one")
        DBOS.register_queue("two")
        one = DBOS.enqueue_workflow("one", increment, 1)
        two = DBOS.enqueue_workflow("two", increment, 2)
        declared = DBOS.enqueue_workflow("declared", increment, 3)
        print(one.get_result(timeout=30))
        # Started without a queue: the default queue, always consumed.
        print(DBOS.start_workflow(increment, 4).get_result(timeout=30))
        DBOS.recover()  # a sweep adopts registered queues: not "two"
        time.sleep(3)
        print(two.get_status().status, declared.get_status().status)
        DBOS.destroy()

        DBOS(config=program.config)
        DBOS.listen_queues(["two", "declared"])
        DBOS.launch()
        print(two.get_result(timeout=30), declared.get_result(timeout=30))
        DBOS.destroy()
        """,
        _env(program_database),
    )
    assert output.splitlines() == ["refused: True", "2", "5", "ENQUEUED ENQUEUED", "3 4"]


@pytest.mark.parametrize(("timeout", "seconds", "status"), [(30, 5, "SUCCESS"), (0, 15, "PENDING")])
def test_destroy_waits_for_running_workflows_as_long_as_it_is_told(
    program_database: str, timeout: int, seconds: int, status: str
) -> None:
    # The workflow runs `seconds`; the process exits once it printed its status.
    output = _run(
        f"""
        import time
        from celery_durable import DBOS, DBOSClient
        import {PROGRAM}

        @DBOS.workflow()
        def slow() -> str:
            started()
            time.sleep({seconds})
            return "done"

        @DBOS.step()
        def started() -> None:
            pass

        DBOS.launch()
        handle = DBOS.start_workflow(slow)
        while not DBOS.list_workflow_steps(handle.workflow_id):
            time.sleep(0.05)
        DBOS.destroy(workflow_completion_timeout_sec={timeout})
        import os
        env = os.environ
        client = DBOSClient(env["PORTING_DATABASE_URL"], broker_url=env["CELERY_BROKER_URL"])
        print(client.retrieve_workflow(handle.workflow_id).get_status().status)
        client.destroy()
        """,
        _env(program_database),
    )
    assert output.split() == [status]


def test_the_program_module_is_a_celery_worker_target(
    program_database: str, tmp_path: Path
) -> None:
    migrate_databases(program_database)
    # A module that launches as it loads: inside celery worker, no second worker starts.
    env = _env(program_database, PORTING_LAUNCH_ON_IMPORT="1")
    worker = spawn(
        [*CELERY, "-A", PROGRAM, "worker", "--pool=threads", "--concurrency=2", "-l", "INFO"],
        env,
        tmp_path / "worker.log",
    )
    producer = Celery("porting-producer", broker=PROGRAM_BROKER, set_as_current=False)
    client = DBOSClient(program_database, celery=producer)
    try:
        handle = client.enqueue({"workflow_name": "increment", "allow_unregistered": True}, 1)
        assert handle.get_result(timeout=60) == 2, worker.output()
        assert "In-process worker not started" in worker.output()
    finally:
        client.destroy()
        worker.stop()


def test_reset_system_database_truncates_and_refuses_after_launch(
    program_database: str,
) -> None:
    output = _run(
        f"""
        from celery_durable import DBOS
        from {PROGRAM} import config, increment
        DBOS.launch()
        DBOS.start_workflow(increment, 1).get_result(timeout=30)
        try:
            DBOS.reset_system_database()
        except Exception as error:
            print(type(error).__name__)
        DBOS.destroy()
        DBOS(config=config)
        DBOS.reset_system_database(truncate=True)
        DBOS.launch()
        print(len(DBOS.list_workflows()))
        DBOS.destroy()
        """,
        _env(program_database),
    )
    assert output.split() == ["DBOSException", "0"]


def test_dbos_documented_pytest_fixture_works_unchanged(program_database: str) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            "tests/integration/porting/dbos_fixture_suite.py",
        ],
        env=_env(program_database),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout
