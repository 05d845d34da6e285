"""Benchmarks of celery_durable (``python -m bench``): run them, print a table, write JSON.

    python -m bench all                 # every benchmark, full sizes (several minutes)
    python -m bench throughput replay   # some of them
    python -m bench all --quick         # tiny sizes: checks the harness, measures nothing
    python -m bench all --exclude dbos_transact   # without DBOS (which pip-installs it)
    python -m bench all --markdown      # the table in Markdown (docs/performance.md)

Two DBOS-compatibility instruments share the entry point but are not benchmarks (``all``
leaves them out; see docs/dbos-compatibility.md):

    python -m bench dbos_api            # DBOS 3.4's API, item by item, against ours
    python -m bench dbos_suite          # DBOS 3.4's own test suite, run on celery_durable

Benchmarks assert nothing about time. See docs/performance.md for what each figure
means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

from bench import (
    brokerless_enqueue,
    comparison,
    dbos_api,
    dbos_suite,
    dbos_transact,
    enqueue,
    gevent_overlap,
    group_commit,
    io_bound,
    messaging,
    noop_sweep,
    observability,
    recovery,
    replay,
    retry_timing,
    step_overhead,
    task_calls,
    throughput,
)
from bench.db import server_settings
from bench.report import Result, markdown_table, text_table, write_json
from bench.settings import ROOT


def _runner(module: Any, log_dir: Path | None = None) -> Callable[[bool], Result]:
    def run(quick: bool) -> Result:
        params = module.QUICK if quick else module.FULL
        if log_dir is not None and "log_dir" in inspect.signature(module.run).parameters:
            return cast(Result, module.run(params, log_dir=log_dir))
        return cast(Result, module.run(params))

    return run


MODULES: dict[str, Any] = {
    module.NAME: module
    for module in (
        step_overhead,
        observability,
        enqueue,
        brokerless_enqueue,
        replay,
        throughput,
        retry_timing,
        recovery,
        messaging,
        io_bound,
        noop_sweep,
        gevent_overlap,
        group_commit,
        task_calls,
        dbos_transact,
    )
}
# Commands with arguments of their own, not benchmarks: ``python -m bench NAME --help``.
INSTRUMENTS: dict[str, Callable[[list[str]], int]] = {
    dbos_api.NAME: dbos_api.main,
    dbos_suite.NAME: dbos_suite.main,
}
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def revision() -> str:
    """The measured celery_durable: its commit, or CELERY_DURABLE_BENCH_REVISION."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "celery_durable"):
        commit += " + uncommitted changes"
    return commit or os.environ.get("CELERY_DURABLE_BENCH_REVISION", "unknown")


def metadata(command: str, quick: bool) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "quick": quick,
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {
            "celery_durable": revision(),
            "celery": version("celery"),
            "kombu": version("kombu"),
            "sqlalchemy": version("sqlalchemy"),
            "psycopg": version("psycopg"),
        },
        "postgresql": server_settings(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }


def header(meta: dict[str, Any]) -> str:
    pg = meta["postgresql"]
    return (
        f"Run {meta['date']} on {meta['machine']['cores']} cores "
        f"({meta['machine']['platform']}, Python {meta['machine']['python']}); "
        f"PostgreSQL {pg['server_version']} (synchronous_commit={pg['synchronous_commit']}, "
        f"fsync={pg['fsync']}), Celery {meta['versions']['celery']}, "
        f"celery_durable {meta['versions']['celery_durable']}. Load average (1, 5, 15 min) "
        f"at start: {'/'.join(f'{load:.2f}' for load in meta['load_average_at_start'])}.\n"
        f"Command: {meta['command']}"
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments and arguments[0] in INSTRUMENTS:
        return INSTRUMENTS[arguments[0]](arguments[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "benchmarks", nargs="*", default=["all"], help=f"all, or any of: {', '.join(MODULES)}"
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="NAME", help="leave this one out"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)
    names = list(MODULES) if "all" in args.benchmarks else args.benchmarks
    unknown = [name for name in [*names, *args.exclude] if name not in MODULES]
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(MODULES)} "
            f"(or run an instrument alone: {', '.join(INSTRUMENTS)})"
        )
    names = [name for name in names if name not in args.exclude]
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = metadata(command.strip(), args.quick)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    results: list[Result] = []
    for name in names:
        print(f"running {name}…", file=sys.stderr, flush=True)
        started = time.monotonic()
        load = os.getloadavg()[0]
        result = _runner(MODULES[name], log_dir)(args.quick)
        result.seconds = round(time.monotonic() - started, 1)
        result.params["load_average_1min_at_start"] = round(load, 2)
        results.append(result)
        print(f"  {name}: {result.seconds}s", file=sys.stderr, flush=True)
    summary = comparison.compare(results)
    if summary is not None:
        results.append(summary)
    write_json(args.json, {**meta, "worker_logs": str(log_dir)}, results)
    print(header(meta))
    print()
    print(markdown_table(results) if args.markdown else text_table(results))
    print(f"\nJSON: {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
