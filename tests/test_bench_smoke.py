"""The benchmark harness, with tiny sizes: it must keep running (it measures nothing).

``python -m bench <every benchmark but DBOS> --quick`` in a subprocess (the harness
configures ``DBOS`` for databases of its own, which must not replace this process's),
against the same PostgreSQL and Redis as the other tests. The DBOS Transact comparison
is left out: it installs DBOS from the network into a virtualenv of its own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from bench.__main__ import MODULES

ROOT = Path(__file__).resolve().parent.parent
SMOKED = [name for name in MODULES if name != "dbos_transact"]


def test_every_benchmark_runs_with_tiny_sizes(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", *SMOKED, "--quick", "--markdown", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(output.read_text())
    results = {result["benchmark"]: result for result in document["results"]}
    assert set(SMOKED) <= set(results)
    for name in SMOKED:
        result = results[name]
        assert result["skipped"] is None, (name, result["skipped"])
        assert result["figures"], name
        for figure in result["figures"]:
            assert figure["value"] is not None and math.isfinite(figure["value"]), (name, figure)
    # The Markdown table has a row per figure, under the run's header.
    assert completed.stdout.startswith("Run ")
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + sum(len(results[name]["figures"]) for name in SMOKED)
