"""Chaos: N workflows of M steps on 2 workers, one SIGKILLed every few seconds.

    python -m bench.chaos --workflows 500 --steps 5 --kill-every 3

Runs against the test services (PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379;
override with CELERY_DURABLE_TEST_DATABASE_URL and CELERY_DURABLE_CHAOS_BROKER_URL) in
a database of its own, with ``tests.fault_app`` as the workers' app and a separate
``celery beat`` running the recovery sweep. It prints one line:

    completed N/N, step side effects duplicated: K (interrupted steps only), lost: 0

K counts step bodies that ran more than once; each kill can interrupt at most one step
per pool process, so K <= kills x concurrency.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url

from bench.db import create_tables

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = (
    make_url(
        os.environ.get(
            "CELERY_DURABLE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
    )
    .set(database="celery_durable_chaos")
    .render_as_string(hide_password=False)
)
BROKER_URL = os.environ.get("CELERY_DURABLE_CHAOS_BROKER_URL", "redis://127.0.0.1:6379/13")
QUEUE = "chaos"


def _prepare() -> None:
    admin = make_url(DATABASE_URL).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute('DROP DATABASE IF EXISTS "celery_durable_chaos" WITH (FORCE)')
        connection.execute('CREATE DATABASE "celery_durable_chaos"')
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute("CREATE TABLE fault_effects (workflow_id text, step text, pid integer)")
        connection.execute("CREATE TABLE fault_triggers (point text PRIMARY KEY, action text)")
        connection.execute("CREATE TABLE fault_payments (id text PRIMARY KEY)")
    create_tables(DATABASE_URL)
    redis.Redis.from_url(BROKER_URL).flushdb()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.fault_app", *args],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _worker(
    index: int, env: dict[str, str], log: Path, concurrency: int
) -> subprocess.Popen[bytes]:
    return _spawn(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=chaos{index}-{time.monotonic_ns()}@%h",
        ],
        env,
        log,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(
    workflows: int, steps: int, kill_every: float, timeout: float, concurrency: int
) -> dict[str, int]:
    """Runs the scenario; returns its counts."""
    _prepare()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    log = workdir / "celery.log"
    env = {
        **os.environ,
        "CD_FAULT_DATABASE_URL": DATABASE_URL,
        "CD_FAULT_BROKER_URL": BROKER_URL,
        "CD_FAULT_QUEUE": QUEUE,
        "CD_FAULT_STEP_SECONDS": "0.02",
        "CD_FAULT_SWEEP_SECONDS": "1",
        "CD_FAULT_GRACE_SECONDS": "5",
    }
    from celery_durable import DBOSClient

    client = DBOSClient(DATABASE_URL, BROKER_URL)
    beat = _spawn(["beat", f"--schedule={workdir / 'beat'}", "--loglevel=INFO"], env, log)
    workers = [_worker(index, env, log, concurrency) for index in range(2)]
    kills = 0
    try:
        for _ in range(workflows):
            client.enqueue(
                {"workflow_name": "steps", "queue_name": QUEUE, "allow_unregistered": True}, steps
            )
        deadline = time.monotonic() + timeout
        next_kill = time.monotonic() + kill_every
        while time.monotonic() < deadline:
            if len(client.list_workflows(status="SUCCESS")) == workflows:
                break
            if time.monotonic() >= next_kill:
                index = random.randrange(len(workers))
                _kill(workers[index])
                kills += 1
                workers[index] = _worker(index, env, log, concurrency)
                next_kill = time.monotonic() + kill_every
            time.sleep(0.2)
        completed = len(client.list_workflows(status="SUCCESS"))
        with psycopg.connect(DATABASE_URL) as connection:
            duplicated = connection.execute(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT count(*) AS n FROM fault_effects "
                "GROUP BY workflow_id, step) AS counts"
            ).fetchone()
            missing = connection.execute(
                "SELECT count(*) FROM generate_series(0, %s - 1) AS s(step) "
                "CROSS JOIN celery_durable.workflow_status AS w "
                "WHERE w.status = 'SUCCESS' AND NOT EXISTS (SELECT 1 FROM fault_effects AS e "
                "WHERE e.workflow_id = w.workflow_uuid AND e.step = s.step::text)",
                (steps,),
            ).fetchone()
    finally:
        for process in [*workers, beat]:
            _kill(process)
        client.destroy()
    return {
        "workflows": workflows,
        "completed": completed,
        "duplicated": int(duplicated[0]) if duplicated else 0,
        "lost": workflows - completed + (int(missing[0]) if missing else 0),
        "kills": kills,
        "concurrency": concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    started = time.monotonic()
    result = run(args.workflows, args.steps, args.kill_every, args.timeout, args.concurrency)
    print(
        f"completed {result['completed']}/{result['workflows']}, step side effects "
        f"duplicated: {result['duplicated']} (interrupted steps only), lost: {result['lost']}"
    )
    print(
        f"({result['kills']} kills in {time.monotonic() - started:.0f}s, "
        f"at most {result['kills'] * result['concurrency']} steps could be interrupted)",
        file=sys.stderr,
    )
    if result["lost"] or result["duplicated"] > result["kills"] * result["concurrency"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
