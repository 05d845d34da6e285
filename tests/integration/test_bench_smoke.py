"""The benchmark harness, with tiny sizes: it must keep running (it measures nothing).

``python -m bench all --exclude dbos_transact --quick`` in a subprocess (the harness
configures ``DBOS`` for databases of its own and defines a Celery app and workflows,
none of which may leak into this process), against the same PostgreSQL and Redis as
the other tests. The DBOS Transact comparison is left out, not skipped: it installs
DBOS from the network into a virtualenv of its own (``messaging`` measures DBOS only
without ``--quick``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {
    "step_overhead",
    "observability",
    "enqueue",
    "brokerless_enqueue",
    "replay",
    "throughput",
    "retry_timing",
    "recovery",
    "messaging",
    "io_bound",
    "noop_sweep",
    "gevent_overlap",
}


@pytest.mark.timeout(300)  # every benchmark starts workers: io_bound and its kin one per pool
def test_every_benchmark_runs_with_tiny_sizes(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "all",
            "--exclude",
            "dbos_transact",
            "--quick",
            "--markdown",
            f"--json={output}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=270,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(output.read_text())
    results = {result["benchmark"]: result for result in document["results"]}
    assert set(results) >= BENCHMARKS
    assert "dbos_transact" not in results
    for name, result in results.items():
        assert result["skipped"] is None, (name, result["skipped"])
        assert result["figures"], name
        for figure in result["figures"]:
            assert figure["value"] is not None and math.isfinite(figure["value"]), (name, figure)
    # The Markdown table has a row per figure, under the run's header.
    assert completed.stdout.startswith("Run ")
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + sum(len(result["figures"]) for result in results.values())
