"""Application versions: two versions of workers side by side (a rolling deploy), and
``DBOS.patch`` / ``DBOS.deprecate_patch`` (DBOS 3.x semantics).

The workers are real ``celery worker`` subprocesses of ``tests.integration.fault_app``, each given
its version by ``CD_FAULT_APP_VERSION``; their steps say which version ran them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import DBOS, SetEnqueueOptions, SetWorkflowID
from celery_durable.engine.registry import Registry
from celery_durable.error import (
    DBOSException,
    DBOSInitializationError,
    DBOSPatchNondeterminismError,
    DBOSUnexpectedStepError,
)
from celery_durable.integration.runtime import Runtime
from celery_durable.store import SystemStore
from tests.conftest import DATABASE_URL
from tests.integration.test_faults import (
    FAULT_DATABASE_URL,
    Faults,
    fault_database,
    redis_faults,
    wait_until,
)
from worker.settings import from_environ

__all__ = ["fault_database", "redis_faults"]  # fixtures used below

TIMEOUT = 60.0


def version_row(faults: Faults, workflow_id: str) -> dict[str, Any]:
    cursor = faults.db.execute(
        "SELECT status, application_version, dispatch_parked, execution_active "
        "FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    )
    row = cursor.fetchone()
    assert row is not None, workflow_id
    return dict(zip([c.name for c in cursor.description or []], row, strict=True))


def live_versions(faults: Faults) -> set[str]:
    rows = faults.db.execute(
        "SELECT application_version FROM celery_durable.worker_versions "
        "WHERE last_seen_epoch_ms > (extract(epoch from now()) * 1000)::bigint - 30000"
    ).fetchall()
    return {row[0] for row in rows}


def cli(faults: Faults, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        env=faults.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_two_versions_of_workers_side_by_side(redis_faults: Faults) -> None:
    faults = redis_faults
    old = faults.start_worker(CD_FAULT_APP_VERSION="v1")
    # Enqueued without a version: the first worker to claim it stamps its own.
    handle = faults.enqueue("across_versions")
    wait_until(
        lambda: (
            version_row(faults, handle.workflow_id)["application_version"] == "v1"
            and not version_row(faults, handle.workflow_id)["execution_active"]
        ),
        TIMEOUT,
        "the v1 worker to run it into its recv",
    )
    assert handle.get_status().app_version == "v1"

    # The deploy: a v2 worker starts, the v1 worker stops (its version leaves with it).
    faults.start_worker(CD_FAULT_APP_VERSION="v2")
    wait_until(lambda: "v2" in live_versions(faults), TIMEOUT, "the v2 worker's first sweep")
    old.stop()
    assert "v1" not in live_versions(faults)

    # Woken now, the v1 workflow reaches the v2 worker only: it is parked for v1.
    faults.client.send(handle.workflow_id, "x", "go")
    wait_until(
        lambda: version_row(faults, handle.workflow_id)["dispatch_parked"],
        TIMEOUT,
        "the v2 worker to park the v1 workflow",
    )
    assert version_row(faults, handle.workflow_id)["status"] == "PENDING"
    shown = json.loads(cli(faults, "workflows", "get", handle.workflow_id, "--json").stdout)
    assert shown["app_version"] == "v1"
    assert "waits for a worker of application version v1" in shown["waiting_for"]
    # Its worker left (a warm shutdown forgets it as running), not unseen.
    assert "(last seen 20" in shown["waiting_for"], shown["waiting_for"]
    assert "running: v2" in shown["waiting_for"]
    listed = json.loads(cli(faults, "workflows", "list", "--version", "v1", "--json").stdout)
    assert [w["workflow_id"] for w in listed] == [handle.workflow_id]

    # New work runs on v2 meanwhile; work asked of v1 waits for a v1 worker.
    assert faults.enqueue("one_version_step").get_result(timeout=TIMEOUT) == "only@v2"
    pinned = faults.client.enqueue(
        {
            "workflow_name": "one_version_step",
            "queue_name": faults.queue,
            "allow_unregistered": True,
            "app_version": "v1",
        }
    )

    # A v1 worker again (old workers drain old work): it finishes both on v1, whichever
    # worker their messages reach (v2 sends them back while a v1 worker runs).
    faults.start_worker(CD_FAULT_APP_VERSION="v1")
    assert handle.get_result(timeout=TIMEOUT) == ["before@v1", "after-x@v1"]
    assert pinned.get_result(timeout=TIMEOUT) == "only@v1"
    both = [
        faults.client.enqueue(
            {
                "workflow_name": "one_version_step",
                "queue_name": faults.queue,
                "allow_unregistered": True,
                "app_version": version,
            }
        )
        for version in ("v1", "v2", "v1", "v2")
    ]
    assert [h.get_result(timeout=TIMEOUT) for h in both] == [
        "only@v1",
        "only@v2",
        "only@v1",
        "only@v2",
    ]

    # Moving a finished v1 workflow's tail to v2: its recorded steps replay as they were.
    steps = faults.client.list_workflow_steps(handle.workflow_id)
    after = next(s for s in steps if s["output"] == "after-x@v1")["function_id"]
    forked = faults.client.fork_workflow(handle.workflow_id, after, application_version="v2")
    assert forked.get_result(timeout=TIMEOUT) == ["before@v1", "after-x@v2"]
    assert forked.get_status().app_version == "v2"


def test_fork_and_enqueue_refuse_a_bad_version(redis_faults: Faults) -> None:
    faults = redis_faults
    with pytest.raises(DBOSException, match="app_version must be a non-empty string"):
        faults.client.enqueue(
            {"workflow_name": "one_version_step", "queue_name": faults.queue, "app_version": ""}
        )
    with pytest.raises(DBOSException, match="application_version must be a non-empty string"):
        faults.client.fork_workflow("any", 1, application_version="")
    with (
        pytest.raises(DBOSException, match="app_version must be a non-empty string"),
        SetEnqueueOptions(app_version=7),  # type: ignore[arg-type]
    ):
        pass
    assert faults.db.execute("SELECT count(*) FROM celery_durable.workflow_status").fetchone() == (
        0,
    )


# -- DBOS.patch and DBOS.deprecate_patch (an in-process worker) -------------------------

# Which code the workflow below runs: "old" (before the patch), "patched", "deprecated".
code = {"version": "old"}


@DBOS.step()
def step_a() -> str:
    return "a"


@DBOS.step()
def step_b() -> str:
    return "b"


@DBOS.step()
def step_c() -> str:
    return "c"


@DBOS.step()
def step_d(message: str) -> str:
    return f"d-{message}"


@DBOS.workflow()
def patched_workflow() -> list[str]:
    done = [step_a()]
    if code["version"] == "old":
        done.append(step_b())
    elif code["version"] == "patched":
        done.append(step_c() if DBOS.patch("use-c") else step_b())
    else:
        DBOS.deprecate_patch("use-c")
        done.append(step_c())
    message = DBOS.recv("go", timeout_seconds=60)
    done.append(step_d(message))
    return done


def start_patched(version: str) -> Any:
    code["version"] = version
    workflow_id = f"patch-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(patched_workflow)
    wait_until(
        # recv's deadline is recorded as it starts waiting (recv itself when it returns).
        lambda: "DBOS.sleep" in names(workflow_id),
        TIMEOUT,
        f"{workflow_id} to wait in recv",
    )
    return handle


def names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)]


@pytest.mark.usefixtures("worker")
def test_patch_branches_on_whether_a_workflow_started_before_the_patch() -> None:
    before = start_patched("old")  # records a, b; waits
    after = start_patched("patched")  # records a, the marker, c; waits
    first, marker, third = names(after.workflow_id)[:3]
    assert (first.endswith("step_a"), marker, third.endswith("step_c")) == (
        True,
        "DBOS.patch-use-c",
        True,
    )
    assert names(before.workflow_id)[1].endswith("step_b")

    # The patched code is deployed: each workflow replays the branch it started on.
    code["version"] = "patched"
    DBOS.send(before.workflow_id, "1", "go")
    DBOS.send(after.workflow_id, "2", "go")
    assert before.get_result(timeout=TIMEOUT) == ["a", "b", "d-1"]
    assert after.get_result(timeout=TIMEOUT) == ["a", "c", "d-2"]

    # Once no workflow from before the patch remains, deprecate_patch drops the old
    # branch: it replays the marker where one is recorded and writes none.
    patched = start_patched("patched")
    code["version"] = "deprecated"
    fresh = start_patched("deprecated")
    assert "DBOS.patch-use-c" not in names(fresh.workflow_id)
    DBOS.send(patched.workflow_id, "3", "go")
    DBOS.send(fresh.workflow_id, "4", "go")
    assert patched.get_result(timeout=TIMEOUT) == ["a", "c", "d-3"]
    assert fresh.get_result(timeout=TIMEOUT) == ["a", "c", "d-4"]


@pytest.mark.usefixtures("worker")
def test_a_workflow_from_before_the_patch_fails_loudly_on_code_without_its_branch() -> None:
    before = start_patched("old")
    code["version"] = "deprecated"  # the old branch removed too early
    DBOS.send(before.workflow_id, "5", "go")
    with pytest.raises(DBOSUnexpectedStepError):
        before.get_result(timeout=TIMEOUT)


@DBOS.step()
async def tagged(tag: str, i: int) -> str:
    await asyncio.sleep(0)
    return f"{tag}:{i}"


async def patch_then_steps(tag: str) -> str:
    if await DBOS.patch_async(tag):
        for i in range(3):
            await tagged(tag, i)
    return tag


@DBOS.workflow()
async def patches_in_parallel() -> list[str]:
    return list(await asyncio.gather(patch_then_steps("a"), patch_then_steps("b")))


@DBOS.workflow()
async def patches_in_sequence() -> list[str]:
    return [await patch_then_steps("a"), await patch_then_steps("b")]


@pytest.mark.usefixtures("worker")
def test_patch_async_called_concurrently_fails_the_workflow() -> None:
    # Where each marker lands would depend on task scheduling: no replay could follow.
    with pytest.raises(DBOSPatchNondeterminismError, match="concurrently"):
        DBOS.start_workflow(patches_in_parallel).get_result(timeout=TIMEOUT)
    handle = DBOS.start_workflow(patches_in_sequence)
    assert handle.get_result(timeout=TIMEOUT) == ["a", "b"]
    assert names(handle.workflow_id)[0] == "DBOS.patch-a"
    assert names(handle.workflow_id)[4] == "DBOS.patch-b"


@pytest.mark.usefixtures("dbos")
def test_patch_outside_a_workflow_is_an_error() -> None:
    with pytest.raises(DBOSException, match="must be called from a workflow"):
        DBOS.patch("x")
    with pytest.raises(DBOSException, match="must be called from a workflow"):
        DBOS.deprecate_patch("x")


@pytest.mark.usefixtures("worker")
def test_the_worker_records_its_version_on_what_it_runs() -> None:
    code["version"] = "old"
    handle = DBOS.start_workflow(patched_workflow)
    wait_until(lambda: handle.get_status().app_version is not None, TIMEOUT, "the claim's stamp")
    assert handle.get_status().app_version == DBOS.application_version
    assert len(DBOS.application_version) == 32  # the default: an MD5 of the source
    assert (
        DBOS.list_workflows(
            app_version=DBOS.application_version, workflow_ids=[handle.workflow_id]
        )[0].workflow_id
        == handle.workflow_id
    )
    DBOS.send(handle.workflow_id, "6", "go")
    assert handle.get_result(timeout=TIMEOUT) == ["a", "b", "d-6"]


def test_the_worker_reads_its_version_from_the_environment() -> None:
    base = {
        "CELERY_DURABLE_DATABASE_URL": FAULT_DATABASE_URL,
        "CELERY_DURABLE_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    assert "application_version" not in from_environ(base).dbos_config()
    config = from_environ({**base, "CELERY_DURABLE_APPLICATION_VERSION": "2026.12.1"}).dbos_config()
    assert config["application_version"] == "2026.12.1"


def test_a_bad_configured_version_is_refused_at_configuration() -> None:
    with pytest.raises(DBOSInitializationError, match="application_version"):
        Runtime(
            celery=Celery("bad-version"),
            config={
                "name": "x",
                "system_database_url": FAULT_DATABASE_URL,
                "application_version": "",
            },
            registry=Registry(),
            queues={},
        )


def test_a_version_whose_crashed_worker_is_forgotten_is_still_last_seen(dbos: Any) -> None:
    """A crashed worker's row is deleted by a sweep a day later; when its version was
    last seen stays (workflows get says "last seen", not "never seen")."""
    version, executor = f"crashed-{uuid.uuid4().hex[:8]}", f"gone@{uuid.uuid4().hex[:8]}"
    two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
    store = SystemStore(DATABASE_URL)
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
            connection.execute(
                "INSERT INTO celery_durable.worker_versions "
                "(executor_id, application_version, last_seen_epoch_ms) VALUES (%s, %s, %s)",
                (executor, version, two_days_ago),
            )

        def forgotten() -> bool:
            # An operator's sweep that publishes nothing (limit 0) still forgets it.
            store.operations.recover_workflows(grace_ms=3_600_000, limit=0)
            return version not in {
                w.application_version for w in store.workers.list_worker_versions()
            }

        wait_until(forgotten, TIMEOUT, "a sweep to forget the day-old worker")
        assert store.overview.versions_last_seen()[version] == two_days_ago
    finally:
        store.dispose()
