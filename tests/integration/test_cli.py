"""The ``celery-durable workflows`` commands, run as a user would (subprocesses)."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, SetWorkflowID, SetWorkflowTimeout
from tests.conftest import BROKER_URL, DATABASE_URL
from tests.integration.test_faults import wait_until

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()


def cli_env() -> dict[str, str]:
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": DATABASE_URL}
    env["CELERY_DURABLE_BROKER_URL"] = BROKER_URL
    return env


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@DBOS.step(max_attempts=3, interval_seconds=0.3)
def cli_flaky(name: str) -> str:
    calls[name] += 1
    if calls[name] == 1:
        raise ConnectionError("first attempt")
    return name


def fails_once(name: str) -> str:
    calls[name] += 1
    if calls[name] == 1:
        raise TimeoutError("later")
    return name


@DBOS.step(max_attempts=2, interval_seconds=3.0)
def cli_waits(name: str) -> str:
    return fails_once(name)


@DBOS.workflow()
def cli_workflow(tag: str) -> list[str]:
    return [cli_flaky(f"{tag}-a"), cli_waits(f"{tag}-b")]


# Long enough for two CLI processes to start and read while the attempt waits, however
# busy the machine (each is a Python start-up and its imports).
@DBOS.step(max_attempts=2, interval_seconds=10.0)
def cli_waits_long(name: str) -> str:
    return fails_once(name)


@DBOS.workflow()
def cli_workflow_waiting_long(tag: str) -> list[str]:
    return [cli_flaky(f"{tag}-a"), cli_waits_long(f"{tag}-b")]


def test_list_get_and_steps_as_tables_and_json() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_workflow, "t1")
    assert handle.get_result(timeout=30) == ["t1-a", "t1-b"]

    document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
    assert document["status"] == "SUCCESS" and document["output"] == ["t1-a", "t1-b"]
    assert "status: SUCCESS" in cli("workflows", "get", workflow_id).stdout

    steps: list[dict[str, Any]] = json.loads(
        cli("workflows", "steps", workflow_id, "--json").stdout
    )
    assert [(s["function_id"], s["function_name"], s["attempts"]) for s in steps] == [
        (1, "cli_flaky", 2),
        (2, "cli_waits", 2),
    ]
    first_error = steps[0]["attempt_history"][0]["error"]
    assert (first_error["type"], first_error["message"]) == ("ConnectionError", "first attempt")
    assert "in cli_flaky" in first_error["traceback"]
    assert steps[0]["attempt_history"][1]["error"] is None
    assert [s["max_attempts"] for s in steps] == [3, 2]
    table = cli("workflows", "steps", workflow_id).stdout
    assert "waited" in table and "failed: ConnectionError('first attempt')" in table
    # One row per attempt; the id column counts from 1, as DBOS does; attempt n of the
    # step's budget (max_attempts), as the worker's log says it.
    assert [line.split()[:3] for line in table.splitlines()[1:5]] == [
        ["1", "cli_flaky", "1/3"],
        ["1", "cli_flaky", "2/3"],
        ["2", "cli_waits", "1/2"],
        ["2", "cli_waits", "2/2"],
    ]
    # Times as `list` prints them (ISO-8601, UTC), not epoch milliseconds.
    shown = cli("workflows", "get", workflow_id).stdout
    assert f"\nworkflow_id: {workflow_id}\n" in f"\n{shown}"
    assert re.search(r"^created_at: \d{4}-\d\d-\d\dT[\d:.]+Z$", shown, re.MULTILINE), shown
    assert re.search(r"^completed_at: \d{4}-\d\d-\d\dT[\d:.]+Z$", shown, re.MULTILINE), shown

    listed = json.loads(
        cli("workflows", "list", "--name", "cli_workflow", "--status", "SUCCESS", "--json").stdout
    )
    assert workflow_id in [w["workflow_id"] for w in listed]
    assert all(w["status"] == "SUCCESS" for w in listed)
    assert workflow_id in cli("workflows", "list", "--name", "cli_workflow").stdout


def test_cancel_resume_and_fork_from_the_command_line() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_workflow, "t2")
    wait_until(lambda: calls["t2-b"] == 1, 30, "the second step to wait for its retry")
    assert "CANCELLED" in cli("workflows", "cancel", workflow_id).stdout
    # A cancelled workflow has no next attempt to announce.
    table = cli("workflows", "steps", workflow_id).stdout
    assert "next attempt at" not in table
    assert "no next attempt: the workflow is CANCELLED" in table
    time.sleep(3.5)
    assert calls["t2-b"] == 1  # the cancelled retry never ran
    assert "ENQUEUED" in cli("workflows", "resume", workflow_id).stdout
    assert handle.get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (2, 2)
    # A finished workflow has nothing to resume: said, and nothing runs.
    again = cli("workflows", "resume", workflow_id).stdout
    assert again == f"{workflow_id}: SUCCESS (nothing to resume)\n"

    forked_id = cli("workflows", "fork", workflow_id, "--step", "2").stdout.strip()
    assert forked_id and forked_id != workflow_id
    assert DBOS.retrieve_workflow(forked_id).get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (2, 3)  # only step 2 ran again
    # Without --step, as `dbos workflow fork`: from step 1, everything runs again.
    everything = cli("workflows", "fork", workflow_id).stdout.strip()
    assert DBOS.retrieve_workflow(everything).get_result(timeout=30) == ["t2-a", "t2-b"]
    assert (calls["t2-a"], calls["t2-b"]) == (3, 4)


def _find_order(tag: str) -> None:
    raise LookupError(f"no order {tag}")


@DBOS.workflow()
def cli_broken(tag: str) -> None:
    _find_order(tag)


def test_a_failed_workflow_shows_its_traceback_as_json() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_broken, "t3")
    with pytest.raises(LookupError, match="no order t3"):
        handle.get_result(timeout=30)

    error = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)["error"]
    assert (error["type"], error["message"]) == ("LookupError", "no order t3")
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert "in cli_broken" in error["traceback"] and "in _find_order" in error["traceback"]
    text = cli("workflows", "get", workflow_id).stdout
    assert "error: {'type': 'LookupError', 'message': 'no order t3'}" in text
    assert "Traceback" not in text

    # Resuming it would replay its recorded error: refused, pointing to fork.
    refused = cli("workflows", "resume", workflow_id, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert "would replay its recorded error" in line
    assert f"celery-durable workflows fork {workflow_id} --step N" in line
    assert handle.get_status().status == "ERROR"
    assert "ENQUEUED" in cli("workflows", "resume", workflow_id, "--force").stdout
    with pytest.raises(LookupError, match="no order t3"):
        handle.get_result(timeout=30)


def test_a_missing_workflow_is_a_clear_error() -> None:
    result = cli("workflows", "get", "no-such-workflow", check=False)
    assert result.returncode == 1
    assert "Workflow no-such-workflow does not exist" in result.stderr


@DBOS.workflow()
def cli_talker(tag: str) -> str:
    DBOS.set_event("payment_url", f"https://pay.example.com/{tag}")
    DBOS.set_event("detail", {"amount": 12.5, "items": ["a", "b"]})
    DBOS.write_stream("progress", "started")
    DBOS.write_stream("progress", {"done": 1})
    DBOS.write_stream("log", "never closed")
    DBOS.set_event("stage", "waiting")
    go = DBOS.recv("go", timeout_seconds=60)
    DBOS.set_event("payment_url", "paid")  # the last write wins
    DBOS.write_stream("progress", go)
    DBOS.close_stream("progress")
    return str(go)


class Follower:
    """``workflows stream ... --follow`` running, its lines collected as they arrive."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery_durable.cli", "workflows", "stream", *args],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_lines(self, count: int, timeout: float = 20) -> list[str]:
        return [self.lines.get(timeout=timeout) for _ in range(count)]

    def finish(self, timeout: float = 20) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.process.kill()
            self.process.wait()


def test_events_and_streams_from_the_command_line() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_talker, "t3")
    assert DBOS.get_event(workflow_id, "stage", timeout_seconds=30) == "waiting"

    events = {
        "payment_url": "https://pay.example.com/t3",
        "detail": {"amount": 12.5, "items": ["a", "b"]},
    }
    assert json.loads(cli("workflows", "events", workflow_id, "--json").stdout) == {
        **events,
        "stage": "waiting",
    }
    table = cli("workflows", "events", workflow_id).stdout.splitlines()
    assert table[0].split() == ["key", "value"]
    assert [row.split(maxsplit=1) for row in table[1:]] == [  # ordered by key
        ["detail", '{"amount": 12.5, "items": ["a", "b"]}'],
        ["payment_url", '"https://pay.example.com/t3"'],
        ["stage", '"waiting"'],
    ]
    document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
    assert document["status"] == "PENDING" and document["events"]["detail"] == events["detail"]
    text = cli("workflows", "get", workflow_id).stdout
    assert '\nevents:\n  detail: {"amount": 12.5, "items": ["a", "b"]}\n' in text

    # Without --follow: what is there now, at once, while the workflow still waits.
    started = time.monotonic()
    now = cli("workflows", "stream", workflow_id, "progress").stdout
    assert now.splitlines() == ['"started"', '{"done": 1}']
    assert time.monotonic() - started < 15
    listed = json.loads(cli("workflows", "stream", workflow_id, "progress", "--json").stdout)
    assert listed == ["started", {"done": 1}]
    assert cli("workflows", "stream", workflow_id, "nothing").stdout == ""

    # --follow: each value as it is written; ends when the stream is closed ...
    progress = Follower(workflow_id, "progress", "--follow")
    log = Follower(workflow_id, "log", "--follow", "--json")
    assert progress.next_lines(2) == ['"started"', '{"done": 1}']
    time.sleep(0.5)
    assert progress.process.poll() is None and log.process.poll() is None
    DBOS.send(workflow_id, {"paid": True}, "go")
    assert progress.next_lines(1) == ['{"paid": true}']
    assert progress.finish() == 0
    # ... or, for a stream never closed, when the workflow finishes.
    assert handle.get_result(timeout=30) == "{'paid': True}"
    assert log.finish() == 0
    assert json.loads("\n".join(log.next_lines(3))) == ["never closed"]

    assert json.loads(cli("workflows", "events", workflow_id, "--json").stdout) == {
        **events,
        "stage": "waiting",
        "payment_url": "paid",
    }
    followed = cli("workflows", "stream", workflow_id, "progress", "--follow", "--json").stdout
    assert json.loads(followed) == ["started", {"done": 1}, {"paid": True}]
    assert "(no events)" in cli("workflows", "events", _finished_without_events()).stdout


@DBOS.workflow()
def cli_quiet() -> int:
    return 1


def _finished_without_events() -> str:
    handle = DBOS.start_workflow(cli_quiet)
    assert handle.get_result(timeout=30) == 1
    return handle.workflow_id


@pytest.mark.parametrize(
    "command",
    [
        ("workflows", "events", "no-such-workflow"),
        ("workflows", "stream", "no-such-workflow", "progress"),
        ("workflows", "stream", "no-such-workflow", "progress", "--follow", "--json"),
    ],
)
def test_an_unknown_id_is_a_one_line_error(command: tuple[str, ...]) -> None:
    result = cli(*command, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: DBOS Error 5: Workflow no-such-workflow does not exist"
    ]


first_attempt_runs = threading.Event()
second_attempt_runs = threading.Event()
release_first = threading.Event()
release_second = threading.Event()


@DBOS.step()
def cli_quick(tag: str) -> str:
    return tag


@DBOS.step()
def cli_blocks(tag: str) -> str:
    first_attempt_runs.set()
    release_first.wait(30)
    return tag


@DBOS.step(max_attempts=4, interval_seconds=0.2)
def cli_retries_then_blocks(tag: str) -> str:
    calls[tag] += 1
    if calls[tag] == 1:
        raise ConnectionError("first attempt")
    second_attempt_runs.set()
    release_second.wait(30)
    return tag


@DBOS.workflow()
def cli_runs_now(tag: str) -> list[str]:
    return [cli_quick(tag), cli_blocks(tag), cli_retries_then_blocks(f"{tag}-retried")]


def test_what_runs_now_is_shown() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(cli_runs_now, "t5")
    try:
        # A step's first attempt runs: nothing of it is recorded yet, the workflow runs
        # after step 1, since its claim, on the worker that claimed it.
        assert first_attempt_runs.wait(30)
        document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
        running = document["running"]
        assert running is not None, document
        assert (running["after_step"], running["step"]) == (1, None)
        assert running["executor_id"] == document["executor_id"] is not None
        assert running["since_epoch_ms"] >= document["started_at_epoch_ms"]
        text = cli("workflows", "get", workflow_id).stdout
        assert "running: after step 1, since 20" in text and document["executor_id"] in text
        assert "running: after step 1" in cli("workflows", "steps", workflow_id).stdout

        # A retried step's second attempt runs: shown as running, not as a next
        # attempt due at a time already past.
        release_first.set()
        assert second_attempt_runs.wait(30)
        steps = json.loads(cli("workflows", "steps", workflow_id, "--json").stdout)
        retried = steps[2]
        assert retried["state"] == "running"
        assert [(a["attempt"], a["completed_at_epoch_ms"]) for a in retried["attempt_history"]][
            -1
        ] == (2, None)
        table = cli("workflows", "steps", workflow_id).stdout
        assert "next attempt at" not in table and "due" not in table
        (row,) = [line for line in table.splitlines() if " 2/4 " in line]
        assert "running since 20" in row
        text = cli("workflows", "get", workflow_id).stdout
        assert "running: step 3, attempt 2/4, since 20" in text
    finally:
        release_first.set()
        release_second.set()
    assert handle.get_result(timeout=30) == ["t5", "t5", "t5-retried"]
    document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
    assert document["running"] is None
    assert "running:" not in cli("workflows", "get", workflow_id).stdout


@DBOS.workflow()
def cli_sleeps() -> None:
    DBOS.sleep(60)


def test_a_workflow_cancelled_by_its_timeout_says_so() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id), SetWorkflowTimeout(1.0):
        handle = DBOS.start_workflow(cli_sleeps)
    wait_until(lambda: handle.get_status().status == "CANCELLED", 30, "the deadline")
    document = json.loads(cli("workflows", "get", workflow_id, "--json").stdout)
    assert document["reason"] == "cancelled: its deadline passed (workflow timeout)"
    assert document["workflow_deadline_epoch_ms"] == handle.get_status().workflow_deadline_epoch_ms
    text = cli("workflows", "get", workflow_id).stdout
    assert "reason: cancelled: its deadline passed (workflow timeout)" in text
    assert re.search(r"^deadline: \d{4}-\d\d-\d\dT[\d:.]+Z$", text, re.MULTILINE), text


def test_a_direct_call_waiting_in_process_for_its_next_attempt_says_so() -> None:
    workflow_id = f"cli-{uuid.uuid4()}"
    results: list[list[str]] = []

    def call() -> None:
        with SetWorkflowID(workflow_id):
            # A direct call: its retries wait here, in this process.
            results.append(cli_workflow_waiting_long("t6"))

    caller = threading.Thread(target=call)
    caller.start()
    try:
        wait_until(lambda: calls["t6-b"] == 1, 30, "the second step's first attempt")
        text = cli("workflows", "get", workflow_id).stdout
        assert "running: step 2, waiting in-process for attempt 2/2 (due 20" in text, text
        assert "next attempt at 20" in cli("workflows", "steps", workflow_id).stdout
    finally:
        caller.join(30)
    assert results == [["t6-a", "t6-b"]]
