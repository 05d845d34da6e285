"""The chaos run, small, on each broker: it must keep working and keep passing.

Its own private servers (bench.servers) are restarted, never the machine's. Every
fault kind is injected at least once: a worker SIGKILLed and one SIGTERMed, PostgreSQL
restarted, the broker restarted.
"""

from __future__ import annotations

import pytest

from bench.chaos import FAULTS, Settings, run


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_small_chaos_run_keeps_every_invariant(broker: str) -> None:
    report = run(
        Settings(
            workflows=8,
            steps=1,
            broker=broker,
            fault_every=(1.0, 2.0),
            min_faults=len(FAULTS),
            sleep_seconds=1.0,
            hold_seconds=0.1,
            # Small: no backlog outlasts a short grace, and recovery comes sooner.
            grace_seconds=5.0,
            timeout=120,
        )
    )
    summary = "\n".join(report.lines()) + f"\n(logs: {report.logs})"
    assert set(report.fault_counts()) >= set(FAULTS), summary
    assert [check.name for check in report.checks if not check.ok] == [], summary
    assert report.passed, summary
