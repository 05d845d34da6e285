"""A producer deployed before any worker (DBOS's client enqueues names no process serves
yet): the workflow waits ENQUEUED and runs as soon as a worker serving its name
registers, not after the recovery sweep's grace period. Once workers have registered
names, a name none of them serves is refused. The program runs in a process of its own
(its own DBOS, in-process worker), on a database of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BROKER_URL, DATABASE_URL, admin_url, migrated_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database with celery_durable's tables that no worker has used yet."""
    url = make_url(DATABASE_URL)
    url = url.set(database=f"{url.database}_ahead")
    rendered = url.render_as_string(hide_password=False)
    yield migrated_database(rendered)
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


PROGRAM = """
    import os, time, uuid
    from celery_durable import DBOS, DBOSClient
    from celery_durable.error import DBOSWorkflowFunctionNotFoundError

    url = os.environ["AHEAD_DATABASE_URL"]
    client = DBOSClient(system_database_url=url)
    workflow_id = f"ahead-{uuid.uuid4().hex}"
    options = {"workflow_name": "defined_after", "workflow_id": workflow_id}
    client.enqueue(options, 21)
    client.enqueue(options, 21)  # idempotent
    print(client.retrieve_workflow(workflow_id).get_status().status)

    DBOS(config={"name": "ahead", "system_database_url": url})
    DBOS.launch()

    @DBOS.workflow()
    def defined_after(value: int) -> int:
        return value * 2

    # Well within the sweep's grace period (30 s): published when the name registered.
    print(DBOS.retrieve_workflow(workflow_id).get_result(timeout=20))
    print(len(client.list_workflows(name="defined_after")))
    try:
        client.enqueue({"workflow_name": "never_served"})
    except DBOSWorkflowFunctionNotFoundError:
        print("refused")
    client.destroy()
    DBOS.destroy()
"""


def test_a_workflow_enqueued_before_any_worker_runs_when_one_serves_it(
    fresh_database: str,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "AHEAD_DATABASE_URL": fresh_database,
            # A Redis database of its own: its worker consumes Celery's default queue,
            # which the session's worker may consume too on the tests' database.
            "CELERY_BROKER_URL": str(make_url(BROKER_URL).set(database="12")),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["ENQUEUED", "42", "1", "refused"]
