"""The README's first command: the demo on embedded servers, with a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_embedded_servers(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"CELERY_DURABLE_DATABASE_URL", "CELERY_DURABLE_BROKER_URL", "CELERY_BROKER_URL"}
    }
    env["CELERY_DURABLE_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "celery_durable.cli", "demo", "--timeout", "90"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "starting embedded PostgreSQL" in output and "starting embedded Redis" in output
    # Where it runs, each server's address readable (the broker's is not a database URL).
    broker = next(line for line in output.splitlines() if line.startswith("Broker:"))
    assert "redis+socket://" in broker and "invalid" not in broker, broker
    assert (
        "flaky_order" in output and "SUCCESS -> {'order_id': 'order-1', 'charged': 'yes'}" in output
    )
    assert "compensated_order" in output and "SUCCESS -> 'refunded order-2'" in output
    assert (
        "raised: DBOS Error 7: Step reserve_stock has exceeded its maximum of 3 retries" in output
    )
    # Attempt n of the step's budget, as the worker's log says it: the flaky call
    # (max_attempts=4) succeeds on attempt 3 of 4.
    # The table's rows (id, step, attempt, ...), not the worker's banner or log lines.
    rows = [row for row in map(str.split, output.splitlines()) if row[1:2] == ["call_flaky_api"]]
    assert [row[2] for row in rows[:3]] == ["1/4", "2/4", "3/4"], output
    assert "attempt 2/4 failed" in result.stderr
    # The worker's log shows the step retries as Celery retries.
    assert "retry: Retry in" in result.stderr and "StepRetry" in result.stderr
