"""DBOS Transact 3.4's own test suite, run on celery_durable as a porting user would.

    python -m bench dbos_suite                         # the 18 files, a table per file
    python -m bench dbos_suite --files test_auth.py    # some of them
    python -m bench dbos_suite --per-test-timeout 30 --max-seconds 1800

At run time (nothing of DBOS is committed) it downloads the ``dbos`` 3.4 source
distribution, which carries DBOS's tests, into ``bench/.dbos-suite/`` (ignored by git),
and lays out beside the tests:

- ``dbos/__init__.py``: :mod:`bench.dbos_suite_shim`, a ``dbos`` package re-exporting
  celery_durable (absent names import as placeholders that fail when used);
- ``tests/conftest.py``: DBOS's, with the adaptations of :mod:`bench.dbos_suite_conftest`.

Then it runs each file in its own pytest process, in a scratch virtualenv
(``bench/.dbos-suite/venv``: this project's virtualenv plus the test plugins DBOS's tests
need, pytest-timeout among them), against real PostgreSQL (the suite's own databases on
the benchmark server, dropped and created by the fixtures) and a real broker (the
benchmark Redis, flushed first, as ``CELERY_BROKER_URL``: each ``DBOS.launch()`` of
DBOS's fixtures runs the in-process worker a ported program runs). Nothing can hang
it: each test has a timeout, each file a bound, the run an overall bound; tests a killed
file never reported count as errored.

It prints passed / failed / errored / skipped per file and in total, and counts apart
the tests that reach into DBOS's internals (found by scanning each test function's
source: ``_sys_db``, private members of ``DBOS``/``dbos``/a client, names imported from
DBOS's private modules, and the conftest helpers that use them), which no port can be
asked to pass.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dbos_suite_conftest
from bench.db import drop_database
from bench.settings import BROKER_URL, ROOT, database_url

NAME = "dbos_suite"
REQUIREMENT = "dbos>=3.4,<3.5"
WORK = ROOT / "bench" / ".dbos-suite"
VENV = WORK / "venv"
SDIST = WORK / "sdist"
RUN = WORK / "run"
SHIM = ROOT / "bench" / "dbos_suite_shim.py"
# How long a file's pytest may linger after writing its report before it is ended.
EXIT_GRACE_SECONDS = 15.0
# What DBOS's tests import or use beyond this project's virtualenv.
PACKAGES = ("pytest-timeout", "pytest-asyncio", "pytest-mock", "pydantic")

# The files of DBOS's suite that test features celery_durable has (issue 24): queues,
# client, streaming, async, classes, scheduler, failures, concurrency (with single
# execution), workflow management and introspection, duplication policy,
# serialization, auth, patch.
FILES = (
    "test_queue.py",
    "test_client.py",
    "test_streaming.py",
    "test_async.py",
    "test_async_workflow_management.py",
    "test_classdecorators.py",
    "test_scheduler.py",
    "test_failures.py",
    "test_concurrency.py",
    "test_concurrency_primitives.py",
    "test_singleexec.py",
    "test_singleexec_async.py",
    "test_workflow_management.py",
    "test_workflow_introspection.py",
    "test_duplication_policy.py",
    "test_serialization.py",
    "test_auth.py",
    "test_patch.py",
)

# conftest helpers that reach into DBOS's internals (its system database's tables,
# private executors, private modules).
INTERNAL_HELPERS = frozenset(
    {
        "set_workflow_status",
        "reexecute_workflow_by_id",
        "queue_entries_are_cleaned_up",
        "explain_with_index_scans_only",
        "wait_for_client_listener",
        "keep_datasource_checkpoints",
        "migrated_system_database",
    }
)
_PRIVATE_ACCESS = re.compile(r"_sys_db\b|_app_db\b|\b(?:dbos|DBOS|client)\._[a-z]\w*")


def public_names() -> frozenset[str]:
    """DBOS's public names (``dbos.__all__`` and ``dbos.error``), from the snapshot: one
    imported from a private module (``from dbos._error import DBOSException``) is
    public all the same."""
    from bench.dbos_api import load_snapshot

    return frozenset(
        entry["name"]
        for entry in load_snapshot()["items"]
        if entry["section"] in ("dbos", "dbos.error")
    )


@dataclass
class FileResult:
    name: str
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> outcome
    internal: set[str] = field(default_factory=set)  # test ids reaching into internals
    note: str = ""
    seconds: float = 0.0


# -- preparing ---------------------------------------------------------------------


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs)


def ensure_venv() -> Path:
    """The scratch virtualenv: sees this project's virtualenv (celery_durable and its
    test dependencies), adds DBOS's test plugins. Made on first use."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import celery_durable, pytest_timeout, pytest_asyncio, pydantic"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    site_packages = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    # An `import` line of a .pth file runs: addsitedir also reads our editable install's
    # own .pth files (a bare path line would not).
    (site_packages / "celery_durable_project.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )
    _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES],
        timeout=900,
    )
    _run(check)
    return python


def ensure_sdist(python: Path) -> Path:
    """DBOS's source distribution (downloaded once into bench/.dbos-suite/sdist)."""
    found = sorted(SDIST.glob("dbos-3.4.*.tar.gz"))
    if not found:
        SDIST.mkdir(parents=True, exist_ok=True)
        _run(
            [
                str(python),
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-binary",
                ":all:",
                "--no-deps",
                REQUIREMENT,
                "-d",
                str(SDIST),
            ],
            timeout=600,
        )
        found = sorted(SDIST.glob("dbos-3.4.*.tar.gz"))
    return found[-1]


def lay_out(sdist: Path, per_test_timeout: float) -> str:
    """A fresh bench/.dbos-suite/run: DBOS's tests, the adapted conftest, the shim.
    Returns the DBOS version."""
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        members = [m for m in archive.getmembers() if m.name.startswith(f"{root}/tests/")]
        archive.extractall(RUN / "sdist", members=members, filter="data")
    shutil.move(RUN / "sdist" / root / "tests", RUN / "tests")
    shutil.rmtree(RUN / "sdist")
    conftest = RUN / "tests" / "conftest.py"
    conftest.write_text(dbos_suite_conftest.adapt(conftest.read_text()))
    (RUN / "dbos").mkdir()
    shutil.copy(SHIM, RUN / "dbos" / "__init__.py")
    (RUN / "pytest.ini").write_text(
        "[pytest]\n"
        f"timeout = {per_test_timeout}\n"
        # signal: a timed-out test fails and the file goes on (thread would end it).
        "timeout_method = signal\n"
        "addopts = -p no:cacheprovider\n"
    )
    return root.removeprefix("dbos-")


# -- reading results ---------------------------------------------------------------


def _private_names(tree: ast.Module) -> set[str]:
    """Names a test file imports from DBOS's private modules (``dbos._x``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            private_module = node.module.startswith("dbos._")
            for alias in node.names:
                if private_module and alias.name in public_names():
                    continue
                if private_module or (node.module == "dbos" and alias.name.startswith("_")):
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dbos._") and alias.asname:
                    names.add(alias.asname)
    return names


def internal_tests(path: Path) -> set[str]:
    """The test functions of a file that reach into DBOS's internals (by source)."""
    source = path.read_text()
    tree = ast.parse(source)
    private = _private_names(tree) | INTERNAL_HELPERS

    def reaches(node: ast.AST) -> bool:
        segment = ast.get_source_segment(source, node) or ""
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        used |= {a.arg for n in ast.walk(node) if isinstance(n, ast.arguments) for a in n.args}
        return bool(_PRIVATE_ACCESS.search(segment)) or bool(used & private)

    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    # Module-level helpers that reach in make their callers reach in (one level).
    helpers = {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and not n.name.startswith("test_")
        and reaches(n)
    }
    private |= helpers
    tests = set(_test_functions(tree))
    return {n.name for n in functions if n.name in tests and reaches(n)}


def _test_functions(tree: ast.Module) -> list[str]:
    """The tests pytest collects from a module: its (and its Test classes') test_
    functions, not the test_-named workflows defined inside them."""
    nodes = [*tree.body]
    nodes += [n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body]
    return [
        n.name
        for n in nodes
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    ]


def read_junit(path: Path) -> tuple[dict[str, str], str]:
    """``{test id: passed|failed|errored|skipped}`` and a note (a collection error)."""
    outcomes: dict[str, str] = {}
    note = ""
    if not path.exists():
        return outcomes, "no report"
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        classname = case.get("classname", "")
        kinds = {child.tag for child in case}
        if not classname and "error" in kinds:
            error = case.find("error")
            message = error.get("message", "") if error is not None else ""
            note = f"did not import: {message[:160]}"
            continue
        test_id = f"{classname.rsplit('.', 1)[-1]}::{name}"
        if "failure" in kinds:
            outcomes[test_id] = "failed"
        elif "error" in kinds:
            outcomes[test_id] = "errored"
        elif "skipped" in kinds:
            outcomes[test_id] = "skipped"
        else:
            outcomes[test_id] = "passed"
    return outcomes, note


_VERBOSE_LINE = re.compile(
    r"^tests/[\w.]+::(?:(?P<klass>\w+)::)?(?P<name>\S+) (?P<outcome>PASSED|FAILED|ERROR|SKIPPED)"
)
_VERBOSE_OUTCOMES = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "errored",
    "SKIPPED": "skipped",
}


def read_verbose_log(text: str) -> dict[str, str]:
    """Outcomes from pytest's ``-v`` lines, for a file killed before its report."""
    outcomes: dict[str, str] = {}
    for line in text.splitlines():
        match = _VERBOSE_LINE.match(line)
        if match:
            test_id = f"{match['klass'] or ''}::{match['name']}"
            outcome = _VERBOSE_OUTCOMES[match["outcome"]]
            if outcomes.get(test_id) != "failed":  # a teardown ERROR after a FAILED
                outcomes[test_id] = outcome
    return outcomes


def _function_of(test_id: str) -> str:
    return test_id.split("::")[-1].split("[")[0]


# -- running -----------------------------------------------------------------------


def run_file(
    python: Path, name: str, environment: dict[str, str], bound_seconds: float
) -> FileResult:
    report = RUN / "junit" / f"{name}.xml"
    report.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    log = RUN / "junit" / f"{name}.log"
    process = subprocess.Popen(
        # --tb=native: pytest's own traceback formatting re-parses sources, which on
        # CPython 3.11 can end the whole session (SystemError "AST constructor
        # recursion depth mismatch") after a timed-out test.
        [
            *(str(python), "-m", "pytest", f"tests/{name}", f"--junitxml={report}"),
            *("-v", "--tb=native"),
        ],
        cwd=RUN,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    note = ""
    reported_at: float | None = None
    while process.poll() is None:
        now = time.monotonic()
        if reported_at is None and report.exists():
            reported_at = now
        if reported_at is not None and now - reported_at > EXIT_GRACE_SECONDS:
            # Done, but a thread left behind holds the interpreter at exit.
            os.killpg(process.pid, signal.SIGKILL)
            break
        if now - started > bound_seconds:
            os.killpg(process.pid, signal.SIGKILL)
            note = f"killed after {bound_seconds:.0f}s"
            break
        time.sleep(0.5)
    process.wait()
    outcomes, junit_note = read_junit(report)
    if not outcomes:
        outcomes = read_verbose_log(log.read_text(errors="replace"))
    result = FileResult(name=name, outcomes=outcomes, note=note or junit_note)
    result.seconds = round(time.monotonic() - started, 1)
    functions = internal_tests(RUN / "tests" / name)
    # A test function that reported nothing (the file did not import, or the session
    # ended before it ran) counts once, as errored.
    tree = ast.parse((RUN / "tests" / name).read_text())
    reported = {_function_of(test) for test in result.outcomes}
    module = name.removesuffix(".py")
    for test in _test_functions(tree):
        if test not in reported:
            result.outcomes[f"{module}::{test}"] = "errored"
    result.internal = {t for t in result.outcomes if _function_of(t) in functions}
    return result


def _environment() -> dict[str, str]:
    def psycopg_url(suffix: str) -> str:
        return database_url(suffix).replace("postgresql://", "postgresql+psycopg://", 1)

    return {
        **os.environ,
        "PYTHONPATH": str(RUN),
        "DBOS_SUITE_SYSTEM_DATABASE_URL": psycopg_url("dbos_suite"),
        "DBOS_SUITE_USER_DATABASE_URL": psycopg_url("dbos_suite_user"),
        # A ported program's broker, as DBOS(config=...) without celery= reads it: the
        # in-process worker each DBOS.launch() starts consumes it.
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
    }


def _flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


# -- reporting ---------------------------------------------------------------------

COLUMNS = ("passed", "failed", "errored", "skipped")


def tally(result: FileResult, tests: set[str] | None = None) -> Counter[str]:
    return Counter(
        outcome for test, outcome in result.outcomes.items() if tests is None or test in tests
    )


def table(results: list[FileResult]) -> str:
    header = (
        f"{'file':<36} {'tests':>5} {'passed':>6} {'failed':>6} {'errored':>7} {'skipped':>7}"
        f" {'internal':>8} {'public passed':>14}  note"
    )
    lines = [header]
    totals: Counter[str] = Counter()
    for result in results:
        counted = tally(result)
        public = set(result.outcomes) - result.internal
        public_counted = tally(result, public)
        row = {
            "tests": len(result.outcomes),
            **{column: counted[column] for column in COLUMNS},
            "internal": len(result.internal),
            "public": len(public),
            "public_passed": public_counted["passed"],
        }
        totals.update(row)
        lines.append(_row(result.name, row, result.note))
    lines.append(_row("total", totals, ""))
    tests, public_tests = totals["tests"], totals["public"]
    lines.append("")
    lines.append(
        f"{totals['passed']} of {tests} tests pass ({_share(totals['passed'], tests)}); "
        f"of the {public_tests} that use only DBOS's public API, {totals['public_passed']} pass "
        f"({_share(totals['public_passed'], public_tests)}); {totals['internal']} reach into "
        "DBOS's internals."
    )
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _row(name: str, row: Any, note: str) -> str:
    public = f"{row['public_passed']}/{row['public']}"
    return (
        f"{name:<36} {row['tests']:>5} {row['passed']:>6} {row['failed']:>6} "
        f"{row['errored']:>7} {row['skipped']:>7} {row['internal']:>8} {public:>14}  {note}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench dbos_suite", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--files", nargs="+", default=list(FILES), metavar="FILE")
    parser.add_argument("--per-test-timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--per-file-seconds", type=float, default=900.0, metavar="SECONDS")
    parser.add_argument("--max-seconds", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument(
        "--require-passed",
        type=int,
        default=0,
        metavar="N",
        help="exit 1 when fewer than N tests pass (.ci/run's ratchet over a fast subset)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    python = ensure_venv()
    version = lay_out(ensure_sdist(python), args.per_test_timeout)
    _flush_broker()
    environment = _environment()
    results = []
    for name in args.files:
        remaining = args.max_seconds - (time.monotonic() - started)
        if remaining <= 0:
            results.append(FileResult(name=name, note="not run: --max-seconds reached"))
            continue
        print(f"running {name}…", file=sys.stderr, flush=True)
        result = run_file(python, name, environment, min(args.per_file_seconds, remaining))
        print(f"  {name}: {dict(tally(result))} in {result.seconds}s", file=sys.stderr)
        results.append(result)
    for suffix in ("dbos_suite", "dbos_suite_user"):
        drop_database(database_url(suffix))
    print(f"DBOS Transact {version}'s tests on celery_durable (bench/.dbos-suite/run)")
    print(table(results))
    (RUN / "results.json").write_text(
        json.dumps(
            {
                r.name: {"outcomes": r.outcomes, "internal": sorted(r.internal), "note": r.note}
                for r in results
            },
            indent=1,
        )
    )
    print(f"per-test outcomes: {RUN / 'results.json'}; logs: {RUN / 'junit'}", file=sys.stderr)
    passed = sum(tally(result)["passed"] for result in results)
    if passed < args.require_passed:
        print(
            f"{passed} passed, fewer than --require-passed {args.require_passed}", file=sys.stderr
        )
        return 1
    return 0
