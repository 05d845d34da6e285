"""Upgrading a database recorded by the released code (schema version 2).

Through schema version 2 a workflow's operations were numbered from 0; they are now
numbered from 1, as DBOS Transact numbers them. Schema migration 3 moves every
checkpoint up by one, and application migration 2 moves every ``@DBOS.transaction``
outcome up by one. Here a version 2 database is built with the shipped SQL of versions
1 and 2 and the rows the released code (cb64b7c) wrote, captured from real runs of it
(crashed or rescheduled at the points below); it is then upgraded, and each workflow
is called again by the current code, in a process of its own (``python -m
tests.integration.test_upgrade URL``), which reports what ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from celery_durable.store import SystemStore
from celery_durable.store.application import ApplicationStore
from celery_durable.store.migrations import (
    APPLICATION_MIGRATIONS,
    APPLICATION_SCHEMA,
    BOOTSTRAP,
    LATEST_VERSION,
    MIGRATIONS,
    SCHEMA,
)
from celery_durable.store.migrations.v1 import V1
from celery_durable.store.migrations.v2 import V2
from tests.conftest import DATABASE_URL, recreate_database

ROOT = Path(__file__).resolve().parents[2]
LATEST_APPLICATION_VERSION = APPLICATION_MIGRATIONS[-1][0]


def derived_url(suffix: str) -> str:
    name = make_url(DATABASE_URL).database
    return (
        make_url(DATABASE_URL)
        .set(database=f"{name}_{suffix}")
        .render_as_string(hide_password=False)
    )


# -- the version 2 database, as the released code left it ------------------------------
#
# Recorded by the released code:
# - wf-crash (upgrade.crash): step upgrade.fetch (0), transaction upgrade.debit (1, in
#   both databases), transaction upgrade.credit (2) committed with its outcome in
#   transaction_outputs, then the worker was killed before its checkpoint: PENDING,
#   execution_active still true (nothing released the claim).
# - wf-parent (upgrade.parent): child upgrade.child at 0 (id wf-parent-0, SUCCESS),
#   DBOS.sleep (1), step upgrade.add_one (2); killed inside step upgrade.finish (3).
# - wf-waiting (upgrade.parent): killed while its child wf-waiting-0 ran (the parent's
#   checkpoint 0 names the child, incomplete); the child was then run to SUCCESS.
# - wf-orphan (upgrade.parent): killed after its child's row was written, before the
#   parent's checkpoint 0; the child wf-orphan-0 was then run to SUCCESS.
# - wf-backoff, wf-exhaust (upgrade.backoff) under Celery: step upgrade.prepare (0),
#   then the first attempt of upgrade.flaky (1; max_attempts 3) failed and the task was
#   rescheduled: the step waits for its retry (attempts 1, retry_due set).
#
# Times are relative to T, a few minutes before the database is built.

ACCOUNT = "acct"
# What upgrade.parent(5) returns: its child's recorded 50 (the current child_step would
# return 500), add_one's recorded 51, and finish, which runs after the upgrade.
PARENT_RESULT = {"child": 50, "add_one": 51, "finish": 1051}
EXECUTOR = "old-host:1234"
WORKFLOW_IDS = ("wf-crash", "wf-parent", "wf-waiting", "wf-orphan", "wf-backoff", "wf-exhaust")

WORKFLOW_COLUMNS = (
    "workflow_uuid, name, status, queue_name, inputs, output, error, authenticated_user, "
    "executor_id, recovery_attempts, max_recovery_attempts, created_at_epoch_ms, "
    "updated_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms, dispatch_generation, "
    "next_dispatch_at_epoch_ms, dispatch_parked, execution_active, wake_requested, "
    "parent_workflow_id, deduplication_id, priority"
)

OPERATION_COLUMNS = (
    "workflow_uuid, function_id, function_name, output, error, child_workflow_id, attempts, "
    "attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms"
)


def _workflow(
    t: int,
    workflow_uuid: str,
    name: str,
    inputs: str,
    *,
    created: int,
    updated: int,
    started: int,
    next_dispatch: int,
    status: str = "PENDING",
    output: str | None = None,
    completed: int | None = None,
    recovery_attempts: int = 0,
    generation: int = 0,
    execution_active: bool = False,
    wake_requested: bool = False,
    parent: str | None = None,
) -> tuple[Any, ...]:
    return (
        workflow_uuid,
        name,
        status,
        "celery",
        inputs,
        output,
        None,
        None,
        EXECUTOR,
        recovery_attempts,
        100,
        t + created,
        t + updated,
        t + started,
        None if completed is None else t + completed,
        generation,
        t + next_dispatch,
        False,
        execution_active,
        wake_requested,
        parent,
        None,
        0,
    )


def workflow_rows(t: int) -> list[tuple[Any, ...]]:
    five, none = '{"args":[5],"kwargs":{}}', '{"args":[],"kwargs":{}}'
    child, parent, backoff = "upgrade.child", "upgrade.parent", "upgrade.backoff"
    return [
        _workflow(t, "wf-crash", "upgrade.crash", '{"args":["acct"],"kwargs":{}}',
                  created=0, updated=0, started=0, next_dispatch=0, execution_active=True),
        _workflow(t, "wf-parent", parent, five,
                  created=399, updated=399, started=399, next_dispatch=415,
                  execution_active=True, wake_requested=True),
        _workflow(t, "wf-parent-0", child, five, status="SUCCESS", output="50",
                  created=405, updated=412, started=408, completed=412, next_dispatch=405,
                  parent="wf-parent"),
        _workflow(t, "wf-waiting", parent, five,
                  created=825, updated=825, started=825, next_dispatch=1238,
                  execution_active=True, wake_requested=True),
        _workflow(t, "wf-waiting-0", child, five, status="SUCCESS", output="50",
                  created=831, updated=1235, started=834, completed=1235, next_dispatch=831,
                  recovery_attempts=1, parent="wf-waiting"),
        _workflow(t, "wf-orphan", parent, five,
                  created=1735, updated=1735, started=1735, next_dispatch=2150,
                  execution_active=True, wake_requested=True),
        _workflow(t, "wf-orphan-0", child, five, status="SUCCESS", output="50",
                  created=1741, updated=2147, started=2142, completed=2147, next_dispatch=1741,
                  parent="wf-orphan"),
        _workflow(t, "wf-backoff", backoff, none,
                  created=2645, updated=2662, started=2657, next_dispatch=2762, generation=1),
        _workflow(t, "wf-exhaust", backoff, none,
                  created=3158, updated=3173, started=3169, next_dispatch=3273, generation=1),
    ]  # fmt: skip


def _failed_attempt_log(at: int) -> str:
    error = (
        '{"__cd__":"exception","type":"builtins:RuntimeError","args":["attempt 1 failed"],'
        '"message":"attempt 1 failed"}'
    )
    return f'[{{"started_at_epoch_ms":{at},"completed_at_epoch_ms":{at},"error":{error}}}]'


def operation_rows(t: int) -> list[tuple[Any, ...]]:
    """(workflow, function_id, name, output, error, child, attempts, attempt_log,
    retry_due, started, completed), numbered from 0."""
    return [
        ("wf-crash", 0, "upgrade.fetch", '{"account":"acct","amount":7}', None, None, 1,
         None, None, t + 4, t + 4),
        ("wf-crash", 1, "upgrade.debit", "-7", None, None, 1, None, None, t + 5, t + 8),
        ("wf-parent", 0, "upgrade.child", "50", None, "wf-parent-0", 1, None, None,
         t + 408, t + 418),
        ("wf-parent-0", 0, "upgrade.child_step", "50", None, None, 1, None, None,
         t + 411, t + 412),
        ("wf-parent", 1, "DBOS.sleep", str(t + 428), None, None, 1, None, None,
         t + 418, t + 418),
        ("wf-parent", 2, "upgrade.add_one", "51", None, None, 1, None, None, t + 428, t + 428),
        ("wf-waiting", 0, "upgrade.child", None, None, "wf-waiting-0", 1, None, None,
         t + 833, None),
        ("wf-waiting-0", 0, "upgrade.child_step", "50", None, None, 1, None, None,
         t + 1234, t + 1234),
        ("wf-orphan-0", 0, "upgrade.child_step", "50", None, None, 1, None, None,
         t + 2146, t + 2146),
        ("wf-backoff", 0, "upgrade.prepare", '"prepared"', None, None, 1, None, None,
         t + 2660, t + 2660),
        ("wf-backoff", 1, "upgrade.flaky", None, None, None, 1, _failed_attempt_log(t + 2661),
         t + 2761, t + 2661, None),
        ("wf-exhaust", 0, "upgrade.prepare", '"prepared"', None, None, 1, None, None,
         t + 3172, t + 3172),
        ("wf-exhaust", 1, "upgrade.flaky", None, None, None, 1, _failed_attempt_log(t + 3173),
         t + 3273, t + 3173, None),
    ]  # fmt: skip


def transaction_rows(t: int) -> list[tuple[Any, ...]]:
    return [
        ("wf-crash", 1, "upgrade.debit", "-7", None, t + 7),
        ("wf-crash", 2, "upgrade.credit", "-4", None, t + 10),
    ]


# The user's table the transactions write, with what they committed.
LEDGER = (
    "CREATE TABLE upgrade_ledger "
    "(id serial PRIMARY KEY, account text NOT NULL, amount integer NOT NULL)"
)
LEDGER_ROWS = [(ACCOUNT, -7), (ACCOUNT, 3)]


def build_v2_database(url: str, application_url: str | None = None) -> None:
    """A system database at schema version 2 (and its application database, without a
    version table of its own), holding the rows above."""
    application_url = application_url or url
    recreate_database(url)
    if application_url != url:
        recreate_database(application_url)
    t = int(time.time() * 1000) - 300_000
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(BOOTSTRAP)
        for version, sql in ((1, V1), (2, V2)):
            with connection.transaction():
                connection.execute(sql)
                connection.execute(
                    f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, %s)", (version, t - 1000)
                )
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SCHEMA}.workflow_status ({WORKFLOW_COLUMNS}) "
                f"VALUES ({', '.join(['%s'] * 23)})",
                workflow_rows(t),
            )
            cursor.executemany(
                f"INSERT INTO {SCHEMA}.operation_outputs ({OPERATION_COLUMNS}) "
                f"VALUES ({', '.join(['%s'] * 11)})",
                operation_rows(t),
            )
    with psycopg.connect(application_url, autocommit=True) as connection:
        connection.execute(APPLICATION_SCHEMA)
        connection.execute(LEDGER)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO upgrade_ledger (account, amount) VALUES (%s, %s)", LEDGER_ROWS
            )
            cursor.executemany(
                f"INSERT INTO {SCHEMA}.transaction_outputs (workflow_uuid, function_id, "
                "function_name, output, error, created_at_epoch_ms) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                transaction_rows(t),
            )


def operations(url: str) -> set[tuple[str, int, str]]:
    """Every checkpoint but wf-orphan's: it has none before the upgrade, and a fix of
    the bug test_a_child_started_just_before_a_crash_is_not_started_again reports may
    well give it one."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            f"SELECT workflow_uuid, function_id, function_name FROM {SCHEMA}.operation_outputs "
            "WHERE workflow_uuid <> 'wf-orphan'"
        ).fetchall()
    return {(row[0], row[1], row[2]) for row in rows}


def transactions(url: str) -> set[tuple[str, int, str]]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            f"SELECT workflow_uuid, function_id, function_name FROM {SCHEMA}.transaction_outputs"
        ).fetchall()
    return {(row[0], row[1], row[2]) for row in rows}


def versions(url: str, table: str) -> list[int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(f"SELECT version FROM {SCHEMA}.{table} ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def migrate(url: str, application_url: str | None = None) -> tuple[int, int]:
    system = SystemStore(url)
    application = ApplicationStore(application_url or url)
    try:
        return system.schema.migrate(), application.migrate()
    finally:
        system.dispose()
        application.dispose()


def shifted(rows: set[tuple[str, int, str]]) -> set[tuple[str, int, str]]:
    return {(workflow, function_id + 1, name) for workflow, function_id, name in rows}


# -- migrating -------------------------------------------------------------------------


def test_an_upgrade_renumbers_every_checkpoint_exactly_once() -> None:
    """The application database is the system database (the default): each table moves
    by one, whichever migration runs first, however many migrate at once, and
    migrating an upgraded database again changes nothing."""
    url = derived_url("v2_migrate")
    build_v2_database(url)
    before_operations, before_transactions = operations(url), transactions(url)
    assert min(function_id for _, function_id, _ in before_operations) == 0
    assert before_transactions == {
        ("wf-crash", 1, "upgrade.debit"),
        ("wf-crash", 2, "upgrade.credit"),
    }

    results: list[tuple[int, int]] = []
    failures: list[BaseException] = []

    def run(application_first: bool) -> None:
        system, application = SystemStore(url), ApplicationStore(url)
        try:
            if application_first:
                app_version = application.migrate()
                results.append((system.schema.migrate(), app_version))
            else:
                results.append((system.schema.migrate(), application.migrate()))
        except BaseException as failure:  # reported below
            failures.append(failure)
        finally:
            system.dispose()
            application.dispose()

    threads = [threading.Thread(target=run, args=(index % 2 == 0,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert results == [(LATEST_VERSION, LATEST_APPLICATION_VERSION)] * 4

    assert operations(url) == shifted(before_operations)
    assert transactions(url) == shifted(before_transactions)
    assert versions(url, "schema_version") == [version for version, _ in MIGRATIONS]
    assert versions(url, "application_schema_version") == [1, 2]

    # Already at version 4: nothing moves again.
    assert migrate(url) == (LATEST_VERSION, LATEST_APPLICATION_VERSION)
    assert migrate(url) == (LATEST_VERSION, LATEST_APPLICATION_VERSION)
    assert operations(url) == shifted(before_operations)
    assert transactions(url) == shifted(before_transactions)
    assert versions(url, "schema_version") == [version for version, _ in MIGRATIONS]
    assert versions(url, "application_schema_version") == [1, 2]


def test_a_separate_application_database_is_renumbered_by_its_own_migration() -> None:
    url, application_url = derived_url("v2_system"), derived_url("v2_application")
    build_v2_database(url, application_url)
    before_operations = operations(url)
    before_transactions = transactions(application_url)

    system = SystemStore(url)
    try:
        assert system.schema.migrate() == LATEST_VERSION
    finally:
        system.dispose()
    assert operations(url) == shifted(before_operations)
    assert transactions(application_url) == before_transactions  # not the system's to move

    for _ in range(2):
        assert migrate(url, application_url) == (LATEST_VERSION, LATEST_APPLICATION_VERSION)
        assert operations(url) == shifted(before_operations)
        assert transactions(application_url) == shifted(before_transactions)
    assert versions(application_url, "application_schema_version") == [1, 2]
    with psycopg.connect(url) as connection:
        found = connection.execute(
            "SELECT to_regclass(%s)", (f"{SCHEMA}.transaction_outputs",)
        ).fetchone()
    assert found == (None,)


# -- replaying with the current code ---------------------------------------------------


@pytest.fixture(scope="module")
def replayed() -> Iterator[tuple[str, dict[str, Any]]]:
    """The version 2 database, upgraded, then every workflow called again in a process
    of its own (``replay`` below); yields the database URL and that process's report."""
    url = derived_url("v2_replay")
    build_v2_database(url)
    assert migrate(url) == (LATEST_VERSION, LATEST_APPLICATION_VERSION)
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_upgrade", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    yield url, json.loads(result.stdout.strip().splitlines()[-1])


def steps(report: dict[str, Any], when: str, workflow_id: str) -> list[tuple[Any, ...]]:
    return [
        (step["function_id"], step["function_name"], step["child_workflow_id"])
        for step in report[when][workflow_id]
    ]


def status(url: str, workflow_id: str) -> tuple[str, str | None] | None:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            f"SELECT status, output FROM {SCHEMA}.workflow_status WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def children(url: str, parent: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            f"SELECT workflow_uuid FROM {SCHEMA}.workflow_status "
            "WHERE parent_workflow_id = %s ORDER BY 1",
            (parent,),
        ).fetchall()
    return [row[0] for row in rows]


def test_the_upgrade_is_listed_from_1_and_not_renumbered_again_by_launch(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    _, report = replayed
    # After DBOS.launch() migrated once more, before anything ran.
    assert steps(report, "before", "wf-crash") == [
        (1, "upgrade.fetch", None),
        (2, "upgrade.debit", None),
    ]
    assert steps(report, "before", "wf-parent") == [
        (1, "upgrade.child", "wf-parent-0"),
        (2, "DBOS.sleep", None),
        (3, "upgrade.add_one", None),
    ]
    assert steps(report, "before", "wf-parent-0") == [(1, "upgrade.child_step", None)]
    assert steps(report, "before", "wf-waiting") == [(1, "upgrade.child", "wf-waiting-0")]
    assert steps(report, "before", "wf-backoff") == [
        (1, "upgrade.prepare", None),
        (2, "upgrade.flaky", None),
    ]


def test_a_crashed_workflow_resumes_without_running_what_it_recorded_or_committed(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    assert report["results"]["wf-crash"] == {
        "value": {
            "fetched": {"account": ACCOUNT, "amount": 7},
            "debit": -7,
            "credit": -4,  # the committed outcome, read from transaction_outputs
            "note": "acct:-4",
        }
    }
    calls = report["calls"]
    assert calls["upgrade.fetch"] == []
    assert calls["upgrade.debit"] == []
    assert calls["upgrade.credit"] == []  # committed before the crash: not again
    assert calls["upgrade.notify"] == ["wf-crash"]
    with psycopg.connect(url) as connection:
        ledger = connection.execute(
            "SELECT account, amount FROM upgrade_ledger ORDER BY id"
        ).fetchall()
    assert ledger == LEDGER_ROWS
    assert steps(report, "after", "wf-crash") == [
        (1, "upgrade.fetch", None),
        (2, "upgrade.debit", None),
        (3, "upgrade.credit", None),
        (4, "upgrade.notify", None),
    ]
    assert [step["output"] for step in report["after"]["wf-crash"]] == [
        {"account": ACCOUNT, "amount": 7},
        -7,
        -4,
        "acct:-4",
    ]
    # Nothing new committed: the outcomes stay where application migration 2 put them.
    assert transactions(url) == {
        ("wf-crash", 2, "upgrade.debit"),
        ("wf-crash", 3, "upgrade.credit"),
    }
    assert status(url, "wf-crash") == (
        "SUCCESS",
        '{"fetched":{"account":"acct","amount":7},"debit":-7,"credit":-4,"note":"acct:-4"}',
    )


def test_a_child_called_before_the_upgrade_keeps_its_id_and_is_not_run_again(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    assert report["results"]["wf-parent"] == {"value": PARENT_RESULT}
    calls = report["calls"]
    assert "wf-parent-0" not in calls["upgrade.child"]
    assert "wf-parent-1" not in calls["upgrade.child"]  # no new child either
    assert "wf-parent-0" not in calls["upgrade.child_step"]
    assert "wf-parent" not in calls["upgrade.add_one"]
    assert calls["upgrade.finish"].count("wf-parent") == 1
    assert steps(report, "after", "wf-parent") == [
        (1, "upgrade.child", "wf-parent-0"),
        (2, "DBOS.sleep", None),
        (3, "upgrade.add_one", None),
        (4, "upgrade.finish", None),
    ]
    assert children(url, "wf-parent") == ["wf-parent-0"]
    assert status(url, "wf-parent") == ("SUCCESS", '{"child":50,"add_one":51,"finish":1051}')


def test_a_parent_that_was_waiting_on_its_child_reads_the_child_id_from_its_checkpoint(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    assert report["results"]["wf-waiting"] == {"value": PARENT_RESULT}
    calls = report["calls"]
    assert "wf-waiting-0" not in calls["upgrade.child"]
    assert "wf-waiting-0" not in calls["upgrade.child_step"]
    assert "wf-waiting-1" not in calls["upgrade.child"]  # no new child either
    assert calls["upgrade.add_one"].count("wf-waiting") == 1
    assert steps(report, "after", "wf-waiting") == [
        (1, "upgrade.child", "wf-waiting-0"),
        (2, "DBOS.sleep", None),
        (3, "upgrade.add_one", None),
        (4, "upgrade.finish", None),
    ]
    first = report["after"]["wf-waiting"][0]
    assert (first["output"], first["completed"]) == (50, True)
    assert children(url, "wf-waiting") == ["wf-waiting-0"]


def test_a_step_waiting_for_its_retry_continues_its_attempt_budget(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    assert report["results"]["wf-backoff"] == {"value": ["prepared", "ok"]}
    assert report["calls"]["upgrade.prepare"] == []
    # (workflow, the attempt as DBOS.get_context() numbers it, max_attempts, the
    # attempts its checkpoint recorded when it started)
    attempts = [tuple(entry) for entry in report["calls"]["upgrade.flaky"]]
    assert [entry for entry in attempts if entry[0] == "wf-backoff"] == [
        ("wf-backoff", 2, 3, 1),
        ("wf-backoff", 3, 3, 2),
    ]
    flaky = report["after"]["wf-backoff"][1]
    assert (flaky["function_id"], flaky["attempts"], flaky["completed"]) == (2, 3, True)
    assert flaky["attempt_errors"] == [
        "RuntimeError('attempt 1 failed')",  # the released code's, read back
        "RuntimeError('attempt 2 failed')",
        "None",
    ]
    assert status(url, "wf-backoff") == ("SUCCESS", '["prepared","ok"]')


def test_a_step_waiting_for_its_retry_fails_when_its_budget_runs_out(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    result = report["results"]["wf-exhaust"]
    assert result["error"] == "DBOSMaxStepRetriesExceeded"
    assert result["errors"] == [
        "RuntimeError('attempt 1 failed')",
        "RuntimeError('attempt 2 failed')",
        "RuntimeError('attempt 3 failed')",
    ]
    attempts = [tuple(entry) for entry in report["calls"]["upgrade.flaky"]]
    assert [entry for entry in attempts if entry[0] == "wf-exhaust"] == [
        ("wf-exhaust", 2, 3, 1),
        ("wf-exhaust", 3, 3, 2),
    ]
    flaky = report["after"]["wf-exhaust"][1]
    assert (flaky["function_id"], flaky["attempts"], flaky["completed"]) == (2, 3, True)
    assert status(url, "wf-exhaust") == ("ERROR", None)


def test_a_child_started_just_before_a_crash_is_not_started_again(
    replayed: tuple[str, dict[str, Any]],
) -> None:
    url, report = replayed
    assert children(url, "wf-orphan") == ["wf-orphan-0"]
    assert report["calls"]["upgrade.child_step"].count("wf-orphan-1") == 0
    assert report["results"]["wf-orphan"] == {"value": PARENT_RESULT}


# -- the replaying process -------------------------------------------------------------


def replay(url: str) -> dict[str, Any]:
    """Calls every recorded workflow again with the current code (in a fresh process:
    ``python -m tests.integration.test_upgrade URL``); the functions' bodies return values other
    than the recorded ones, so that a replayed outcome can be told from a new run."""
    from celery import Celery
    from sqlalchemy import text

    from celery_durable import DBOS, SetWorkflowID

    calls: dict[str, list[Any]] = {
        name: []
        for name in (
            "upgrade.fetch",
            "upgrade.debit",
            "upgrade.credit",
            "upgrade.notify",
            "upgrade.child",
            "upgrade.child_step",
            "upgrade.add_one",
            "upgrade.finish",
            "upgrade.prepare",
            "upgrade.flaky",
        )
    }

    def called(name: str) -> None:
        calls[name].append(DBOS.workflow_id)

    def book(account: str, amount: int) -> int:
        session = DBOS.sql_session
        session.execute(
            text("INSERT INTO upgrade_ledger (account, amount) VALUES (:a, :n)"),
            {"a": account, "n": amount},
        )
        total = session.execute(
            text("SELECT sum(amount) FROM upgrade_ledger WHERE account = :a"), {"a": account}
        ).scalar_one()
        return int(total)

    @DBOS.step(name="upgrade.fetch")
    def fetch(account: str) -> dict[str, Any]:
        called("upgrade.fetch")
        return {"account": account, "amount": 1000}

    @DBOS.transaction(name="upgrade.debit")
    def debit(account: str, amount: int) -> int:
        called("upgrade.debit")
        return book(account, -amount)

    @DBOS.transaction(name="upgrade.credit")
    def credit(account: str, amount: int) -> int:
        called("upgrade.credit")
        return book(account, amount)

    @DBOS.step(name="upgrade.notify")
    def notify(account: str, balance: int) -> str:
        called("upgrade.notify")
        return f"{account}:{balance}"

    @DBOS.workflow(name="upgrade.crash")
    def crash_flow(account: str) -> dict[str, Any]:
        fetched = fetch(account)
        after_debit = debit(account, fetched["amount"])
        after_credit = credit(account, 3)
        note = notify(account, after_credit)
        return {"fetched": fetched, "debit": after_debit, "credit": after_credit, "note": note}

    @DBOS.step(name="upgrade.child_step")
    def child_step(x: int) -> int:
        called("upgrade.child_step")
        return x * 100  # the released code's returned x * 10

    @DBOS.workflow(name="upgrade.child")
    def child_flow(x: int) -> int:
        called("upgrade.child")
        return child_step(x)

    @DBOS.step(name="upgrade.add_one")
    def add_one(x: int) -> int:
        called("upgrade.add_one")
        return x + 1

    @DBOS.step(name="upgrade.finish")
    def finish(x: int) -> int:
        called("upgrade.finish")
        return x + 1000

    @DBOS.workflow(name="upgrade.parent")
    def parent_flow(x: int) -> dict[str, int]:
        c = child_flow(x)
        DBOS.sleep(0.01)
        y = add_one(c)
        z = finish(y)
        return {"child": c, "add_one": y, "finish": z}

    @DBOS.step(name="upgrade.prepare")
    def prepare() -> str:
        called("upgrade.prepare")
        return "new"

    @DBOS.step(name="upgrade.flaky", max_attempts=3, interval_seconds=0.1, backoff_rate=2.0)
    def flaky() -> str:
        context = DBOS.get_context()
        assert context is not None and context.workflow_id is not None
        with psycopg.connect(url) as connection:
            row = connection.execute(
                f"SELECT attempts FROM {SCHEMA}.operation_outputs "
                "WHERE workflow_uuid = %s AND function_id = %s",
                (context.workflow_id, context.step_id),
            ).fetchone()
        recorded = None if row is None else row[0]
        calls["upgrade.flaky"].append(
            [context.workflow_id, context.attempt, context.max_attempts, recorded]
        )
        if context.workflow_id == "wf-backoff" and context.attempt == 3:
            return "ok"
        raise RuntimeError(f"attempt {context.attempt} failed")

    @DBOS.workflow(name="upgrade.backoff")
    def backoff_flow() -> list[str]:
        return [prepare(), flaky()]

    def listed(workflow_id: str) -> list[dict[str, Any]]:
        return [
            {
                "function_id": step["function_id"],
                "function_name": step["function_name"],
                "output": step["output"],
                "error": repr(step["error"]) if step["error"] is not None else None,
                "child_workflow_id": step["child_workflow_id"],
                "attempts": step["attempts"],
                "completed": step["completed_at_epoch_ms"] is not None,
                "attempt_errors": [repr(entry["error"]) for entry in step["attempt_history"]],
            }
            for step in DBOS.list_workflow_steps(workflow_id)
        ]

    everything = (*WORKFLOW_IDS, "wf-parent-0", "wf-waiting-0", "wf-orphan-0")
    DBOS(
        celery=Celery("upgrade_replay", broker="memory://"),
        config={"name": "upgrade-replay", "system_database_url": url},
    )
    DBOS.launch()  # migrates again: already at the latest version
    report: dict[str, Any] = {"before": {w: listed(w) for w in everything}, "results": {}}
    runs = {
        "wf-crash": (crash_flow, (ACCOUNT,)),
        "wf-parent": (parent_flow, (5,)),
        "wf-waiting": (parent_flow, (5,)),
        "wf-orphan": (parent_flow, (5,)),
        "wf-backoff": (backoff_flow, ()),
        "wf-exhaust": (backoff_flow, ()),
    }
    for workflow_id, (function, args) in runs.items():
        try:
            with SetWorkflowID(workflow_id):
                report["results"][workflow_id] = {"value": function(*args)}
        except Exception as error:
            report["results"][workflow_id] = {
                "error": type(error).__name__,
                "message": str(error),
                "errors": [repr(e) for e in getattr(error, "errors", [])],
            }
    report["after"] = {w: listed(w) for w in everything}
    report["calls"] = calls
    DBOS.destroy()
    return report


if __name__ == "__main__":
    print(json.dumps(replay(sys.argv[1]), default=repr))
