"""DBOS Transact 3.4, measured in the same run (skipped, with the reason, if unavailable).

DBOS cannot share celery_durable's virtualenv (both are imported as ``dbos``-style
facades, and DBOS pins its own dependencies), so it gets one of its own,
``bench/.dbos-venv``, created on first use with ``pip install 'dbos>=3.4,<3.5'``.
:mod:`bench.dbos_transact_script` runs there against its own system database,
``celery_durable_bench_dbos``, and prints its measurements as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from bench.db import recreate_database
from bench.report import Figure, Result
from bench.settings import ROOT, database_url
from bench.stats import pairwise_differences, pairwise_ratios

NAME = "dbos_transact"
REQUIREMENT = "dbos>=3.4,<3.5"
VENV = ROOT / "bench" / ".dbos-venv"
SCRIPT = ROOT / "bench" / "dbos_transact_script.py"
STEPS = 10


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    workflows: int
    inserts: int
    plain_loops: int
    counted_workflows: int
    batch: int
    batches: int
    timeout_seconds: float


FULL = Params(
    repetitions=9,
    workflows=10,
    inserts=300,
    plain_loops=20_000,
    counted_workflows=20,
    batch=300,
    batches=2,
    timeout_seconds=900,
)
QUICK = Params(
    repetitions=2,
    workflows=3,
    inserts=20,
    plain_loops=100,
    counted_workflows=2,
    batch=20,
    batches=1,
    timeout_seconds=120,
)


def _tail(text: str, limit: int = 200) -> str:
    """The last error line of a failed command's output, short enough for the table."""
    lines = [line for line in text.strip().splitlines() if not line.startswith("WARNING")]
    errors = [line for line in lines if "Error" in line or line.startswith("ERROR")]
    last = (errors or lines or ["no output"])[-1].strip()
    return last if len(last) <= limit else last[: limit - 1] + "…"


def ensure_venv() -> str | None:
    """Creates the DBOS virtualenv if needed; returns why it cannot be used, or None."""
    python = VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run(
            [str(python), "-c", "import dbos"], capture_output=True, text=True, check=False
        )
        if check.returncode == 0:
            return None
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=True
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as error:
        return f"pip install '{REQUIREMENT}' failed: {_tail(error.stderr or error.stdout or '')}"
    except subprocess.TimeoutExpired:
        return f"pip install '{REQUIREMENT}' timed out"
    return None


def run_script(arguments: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Runs :mod:`bench.dbos_transact_script` in the DBOS virtualenv (made if needed)
    against a fresh ``celery_durable_bench_dbos``.

    Returns:
        ``(its JSON document, "")``, or ``(None, why it could not be measured)``.
    """
    reason = ensure_venv()
    if reason is not None:
        return None, reason
    url = database_url("dbos")
    recreate_database(url)
    command = [str(VENV / "bin" / "python"), str(SCRIPT), f"--database-url={url}", *arguments]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
            cwd=ROOT / "bench",  # not ROOT: the script must not import this repository
        )
    except subprocess.CalledProcessError as error:
        return None, f"the DBOS script failed: {_tail(error.stderr)}"
    except subprocess.TimeoutExpired:
        return None, "the DBOS script timed out"
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured, ""


def run(params: Params = FULL) -> Result:
    measured, reason = run_script(
        [
            f"--repetitions={params.repetitions}",
            f"--workflows={params.workflows}",
            f"--inserts={params.inserts}",
            f"--plain-loops={params.plain_loops}",
            f"--counted-workflows={params.counted_workflows}",
            f"--batch={params.batch}",
            f"--batches={params.batches}",
            f"--timeout={params.timeout_seconds}",
        ],
        timeout=params.timeout_seconds * (params.batches + 1),
    )
    if measured is None:
        return Result(benchmark=NAME, skipped=reason, params=asdict(params))
    return Result(
        benchmark=NAME,
        figures=_figures(measured, params),
        params={**asdict(params), "dbos_version": measured["version"], "raw": measured},
    )


def _figures(measured: dict[str, Any], params: Params) -> list[Figure]:
    times = measured["times_us"]
    durable = [t / STEPS for t in times["ten"]]
    plain = [t / STEPS for t in times["plain"]]
    overhead = pairwise_differences(durable, plain)
    marginal = [(t - z) / STEPS for t, z in zip(times["ten"], times["zero"], strict=True)]
    counts = measured["counts_per_workflow"]
    version = measured["version"]
    return [
        Figure.of(f"DBOS {version} step (10-step workflow ÷ 10)", durable, "µs", "in-process"),
        Figure.of("overhead per step (step - plain call)", overhead, "µs"),
        Figure.of("0-step workflow (fixed cost)", times["zero"], "µs"),
        Figure.of("marginal step ((10-step - 0-step) ÷ 10)", marginal, "µs"),
        Figure.of("INSERT floor (same server, this run)", times["floor"], "µs"),
        Figure.of(
            "overhead per step ÷ floor",
            pairwise_ratios(overhead, times["floor"]),
            "x",
            "pairwise",
        ),
        Figure.count("statements per 10-step workflow", counts["statements"], "stmt"),
        Figure.count("commits per 10-step workflow", counts["commits"], "xact", "SQLAlchemy"),
        Figure.of(
            f"{params.batch} ten-step workflows through a DBOS queue",
            measured["rates"],
            "wf/s",
            "1 process, queue defaults",
        ),
    ]
