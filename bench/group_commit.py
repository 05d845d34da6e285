"""What group commit saves: one checkpoint alone against checkpoints sent in batches.

The library's own checkpoint statements (``RECORD_STEP`` alone, ``RECORD_STEPS`` for a
batch), sent on one connection to workflows claimed by their owner token, among
``workflows`` rows (enough that a plan scanning ``workflow_status`` would show): for
each batch size, per checkpoint, the PostgreSQL backend's CPU (from ``/proc``: the
server runs on this machine), this process's CPU (psycopg and the JSON of the batch)
and the wall time, interleaved over repetitions; and each batch size's ratio to a
checkpoint sent alone. This is what a worker's executions pay when their checkpoints
queue for the statement pool (:mod:`celery_durable.store.group_commit`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.db import create_tables, recreate_database
from bench.report import Figure, Result
from bench.settings import database_url
from bench.stats import interleaved, pairwise_ratios
from celery_durable.store.sql import steps

NAME = "group_commit"
SCHEMA = "celery_durable"


@dataclass(frozen=True, kw_only=True)
class Params:
    batch_sizes: tuple[int, ...]
    checkpoints: int  # per batch size and repetition
    workflows: int  # rows of workflow_status
    repetitions: int


FULL = Params(batch_sizes=(1, 2, 4, 8, 16), checkpoints=4000, workflows=30000, repetitions=5)
QUICK = Params(batch_sizes=(1, 4), checkpoints=200, workflows=100, repetitions=1)
OWNER_TOKEN = 7


def _backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Checkpoints:
    """A connection sending checkpoints to the claimed workflows of a fresh database."""

    def __init__(self, url: str, workflows: int) -> None:
        recreate_database(url)
        create_tables(url)
        self._connection: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
        self._pid = self._connection.info.backend_pid
        # Claimed workflows (PENDING, with an owner token): as a claim leaves them.
        self._workflows = [f"bench-gc-{uuid.uuid4()}" for _ in range(workflows)]
        with self._connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SCHEMA}.workflow_status (workflow_uuid, status, name, inputs,"
                " owner_token, created_at_epoch_ms, updated_at_epoch_ms,"
                " max_recovery_attempts, next_dispatch_at_epoch_ms)"
                " VALUES (%s, 'PENDING', 'bench.gc', '{}', %s, 0, 0, 10, 0)",
                [(workflow, OWNER_TOKEN) for workflow in self._workflows],
            )
        self._connection.execute(f"ANALYZE {SCHEMA}.workflow_status")
        self._next_function_id = 0

    def _params(self, index: int, function_id: int) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            "workflow_uuid": self._workflows[index % len(self._workflows)],
            "owner_token": OWNER_TOKEN,
            "function_id": function_id,
            "function_name": "bench.step",
            "output": '{"value": 1}',
            "error": None,
            "attempts": 1,
            "attempt_log": None,
            "retry_due_at_epoch_ms": None,
            "started_at_epoch_ms": now,
            "completed_at_epoch_ms": now,
            "child_workflow_id": None,
            "max_attempts": 3,
        }

    def send(self, count: int, batch: int) -> tuple[float, float, float]:
        """Sends ``count`` checkpoints, ``batch`` to a statement; returns the server's
        CPU, this process's CPU and the wall time, each in µs per checkpoint."""
        self._next_function_id += 1
        function_id = self._next_function_id
        cursor = self._connection.cursor()
        server, client, wall = (
            _backend_cpu_seconds(self._pid),
            time.process_time(),
            time.perf_counter(),
        )
        for first in range(0, count, batch):
            if batch == 1:
                cursor.execute(steps.RECORD_STEP_SQL, self._params(first, function_id))
                cursor.fetchone()
            else:
                rows = [self._params(index, function_id) for index in range(first, first + batch)]
                cursor.execute(steps.RECORD_STEPS_SQL, {"rows": json.dumps(rows)})
                cursor.fetchall()
        return (
            1e6 * (_backend_cpu_seconds(self._pid) - server) / count,
            1e6 * (time.process_time() - client) / count,
            1e6 * (time.perf_counter() - wall) / count,
        )

    def close(self) -> None:
        self._connection.close()


def run(params: Params = FULL) -> Result:
    url = database_url(NAME)
    checkpoints = Checkpoints(url, params.workflows)
    measured: dict[int, list[tuple[float, float, float]]] = {k: [] for k in params.batch_sizes}

    def variant(batch: int) -> Any:
        def measure() -> float:
            measured[batch].append(checkpoints.send(params.checkpoints, batch))
            return measured[batch][-1][2]

        return measure

    try:
        checkpoints.send(min(params.checkpoints, 200), 1)  # warm-up: prepared statements
        checkpoints.send(min(params.checkpoints, 200), max(params.batch_sizes))
        interleaved(params.repetitions, {str(k): variant(k) for k in params.batch_sizes})
    finally:
        checkpoints.close()
    figures: list[Figure] = []
    alone = measured.get(1)
    for batch, samples in measured.items():
        what = "alone (RECORD_STEP)" if batch == 1 else f"in batches of {batch} (RECORD_STEPS)"
        for column, (figure, unit) in enumerate(
            (("server CPU", "µs"), ("client CPU", "µs"), ("wall", "µs"))
        ):
            values = [sample[column] for sample in samples]
            figures.append(Figure.of(f"checkpoint {what}: {figure}", values, unit))
            baseline = [sample[column] for sample in alone or ()]
            # The kernel counts CPU in ticks (10 ms): a short run may read none.
            if batch != 1 and baseline and all(baseline):
                figures.append(
                    Figure.of(
                        f"checkpoint {what}: {figure} ÷ alone",
                        pairwise_ratios(values, baseline),
                        "x",
                        "pairwise",
                    )
                )
    return Result(benchmark=NAME, figures=figures, params=asdict(params))
