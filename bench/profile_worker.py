"""Where a worker's CPU goes while it drains no-op ten-step workflows: py-spy's samples.

Not one of ``python -m bench``'s benchmarks (it needs py-spy, ``pip install py-spy``,
and the right to trace the worker, as root)::

    python -m bench.profile_worker --pool prefork --concurrency 2 --workflows 3000

Starts one worker (as :mod:`bench.pools` does), warms it up, enqueues a batch of
``bench.ten_steps`` workflows and records the worker's processes with ``py-spy record
--subprocesses --format raw`` while it drains them. Prints the samples' share by the
package of the innermost frame (where the CPU is spent), the heaviest functions by
that self time, and celery_durable's functions by inclusive time. Only samples of a
thread holding the GIL count (``--gil``): a process waiting for PostgreSQL or Redis
releases it, so the shares are of the Python CPU.
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.pools import Bench, Setting
from bench.settings import database_url
from bench.throughput import Batches
from bench.workers import kill_worker

NAME = "profile"
# py-spy names a frame "function (package/module.py:line)".
PACKAGES = (
    ("celery_durable", "(celery_durable/"),
    ("bench (the workflow's own code)", "(bench/"),
    ("sqlalchemy", "(sqlalchemy/"),
    ("psycopg", "(psycopg/"),
    ("kombu", "(kombu/"),
    ("celery", "(celery/"),
    ("billiard", "(billiard/"),
    ("redis", "(redis/"),
    ("gevent", "(gevent/"),
    ("json", "(json/"),
    ("logging", "(logging/"),
    ("threading", "(threading.py"),
)


def package(frame: str) -> str:
    for name, marker in PACKAGES:
        if marker in frame:
            return name
    return "other (stdlib, interpreter)"


def summarize(raw: str, top: int = 15) -> str:
    """py-spy's collapsed stacks (``frame;frame;... count``) as three small tables."""
    by_package: collections.Counter[str] = collections.Counter()
    by_self: collections.Counter[str] = collections.Counter()
    ours_inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        total += count
        by_package[package(frames[-1])] += count
        by_self[frames[-1]] += count
        for frame in set(frames):
            if "(celery_durable/" in frame:
                ours_inclusive[frame] += count
    lines = [f"{total} samples", "", "self time by package:"]
    lines += [f"  {share(n, total)}  {name}" for name, n in by_package.most_common()]
    lines += ["", f"top {top} functions by self time:"]
    lines += [f"  {share(n, total)}  {frame}" for frame, n in by_self.most_common(top)]
    lines += ["", f"top {top} celery_durable functions by inclusive time:"]
    lines += [f"  {share(n, total)}  {frame}" for frame, n in ours_inclusive.most_common(top)]
    return "\n".join(lines)


def share(count: int, total: int) -> str:
    return f"{100 * count / total:5.1f}%"


def py_spy() -> str:
    """py-spy beside this interpreter (a virtualenv's), or on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def profile(setting: Setting, workflows: int, output: Path) -> str:
    url = database_url(NAME)
    bench = Bench(url, output.parent, timeout_seconds=600)
    try:
        worker = bench.start(setting, NAME)
        try:
            batches = Batches(worker, bench.client, url, 600)
            batches.workflows(100)  # every process opens its connections
            spy = subprocess.Popen(
                [
                    *(
                        py_spy(),
                        "record",
                        "--subprocesses",
                        "--gil",
                        "--nonblocking",
                        "--format",
                        "raw",
                    ),
                    *("--output", str(output), "--pid", str(worker.process.pid)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                rate = batches.workflows(workflows)
            finally:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        finally:
            kill_worker(worker)
    finally:
        bench.close()
    return f"{setting.label}: {workflows} workflows at {rate:.0f} wf/s\n" + summarize(
        output.read_text()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workflows", type=int, default=3000)
    parser.add_argument("--output", type=Path, default=None, help="py-spy's raw output")
    args = parser.parse_args(argv)
    output = args.output or Path(tempfile.mkdtemp(prefix="bench-profile-")) / "worker.txt"
    setting = Setting(pool=args.pool, concurrency=args.concurrency, batch=args.workflows)
    print(profile(setting, args.workflows, output))
    print(f"\nraw stacks: {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
