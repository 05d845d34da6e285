"""A PostgreSQL restart between two steps runs no step again.

After a restart every connection a worker process keeps open is dead: the statement
pool's, the fence's, SQLAlchemy's. The next step's checkpoint must still succeed at
its first sending, and no step may run twice (README, "Crash recovery"). The server
restarted is a private one (tests/integration/private_postgres.py), never the machine's shared one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.integration.private_postgres import PrivatePostgres
from tests.integration.test_faults import REDIS_URL, Faults, create_fault_database, wait_until


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    started = PrivatePostgres()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def private_faults(server: PrivatePostgres, tmp_path: Path) -> Iterator[Faults]:
    url = create_fault_database(server.url("cd_restart"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    faults = Faults(REDIS_URL, tmp_path, database_url=url)
    try:
        yield faults
    finally:
        faults.close()


def _owner(faults: Faults, workflow_id: str) -> tuple[int | None, bool]:
    """The workflow's (owner_token, execution_active): who claimed it last, and whether
    an execution holds it."""
    row = faults.db.execute(
        "SELECT owner_token, execution_active FROM celery_durable.workflow_status "
        "WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchone()
    assert row is not None
    return row[0], bool(row[1])


@pytest.mark.parametrize("sweep", [False, True], ids=["alone", "with-the-sweep"])
def test_a_restart_between_two_steps_runs_no_step_again(
    server: PrivatePostgres, private_faults: Faults, sweep: bool
) -> None:
    faults = private_faults
    faults.add_trigger("between", "hold")
    if sweep:
        # The sweep cannot tell a live execution from a dead one after a restart (the
        # fences' locks went with the server): it starts another execution, in the
        # worker's other process, beside the first one, paused in workflow code.
        worker = faults.start_worker(CD_FAULT_SWEEP_SECONDS="0.5", concurrency=2)
    else:
        worker = faults.start_worker(CD_FAULT_SWEEP_SECONDS="3600", beat=False, concurrency=1)
    handle = faults.enqueue("across_a_pause", "between")
    steps = faults.client.list_workflow_steps
    wait_until(
        lambda: any(s["output"] == 0 for s in steps(handle.workflow_id)),
        60,
        "the first step's checkpoint",
    )
    first_owner = _owner(faults, handle.workflow_id)[0]
    server.restart()
    faults.db = psycopg.connect(faults.database_url, autocommit=True)
    if sweep:
        wait_until(
            lambda: (
                _owner(faults, handle.workflow_id)[0] != first_owner
                and _owner(faults, handle.workflow_id)[1]
            ),
            60,
            "another execution to claim the workflow",
        )
    faults.db.execute("DELETE FROM fault_triggers WHERE point = 'between'")
    assert handle.get_result(timeout=60) == [0, 1]
    # A warm shutdown: the worker finishes what it runs (the first execution too).
    os.kill(worker.process.pid, signal.SIGTERM)
    worker.process.wait(timeout=60)
    # Each step ran once, and the second one's checkpoint succeeded at its first sending
    # (a failed one is logged with the Celery retry that runs the workflow again).
    assert faults.effects(handle.workflow_id) == {"0": 1, "1": 1}
    assert "recording step" not in faults.worker_log()
