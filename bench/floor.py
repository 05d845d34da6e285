"""The physical floor of recording a step: one autocommit INSERT with a synchronous commit.

One round trip to the same server, one single-row ``INSERT ... ON CONFLICT DO NOTHING``
into a small table, committed (and so flushed to the WAL on disk, with the server's
``synchronous_commit``) before the call returns. No checkpoint can cost less.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psycopg


class InsertFloor:
    """A psycopg connection (autocommit) to a benchmark database, and its small table."""

    def __init__(self, database_url: str) -> None:
        self._connection: psycopg.Connection[Any] = psycopg.connect(database_url, autocommit=True)
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id bigint PRIMARY KEY, payload text NOT NULL)"
        )
        self._next_id = 0

    def measure(self, inserts: int) -> float:
        """Runs ``inserts`` INSERTs; returns the median microseconds of one."""
        durations: list[float] = []
        connection = self._connection
        for _ in range(inserts):
            self._next_id += 1
            started = time.perf_counter_ns()
            connection.execute(
                "INSERT INTO bench_floor (id, payload) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (self._next_id, "42"),
            )
            durations.append((time.perf_counter_ns() - started) / 1000)
        return float(statistics.median(durations))

    def close(self) -> None:
        self._connection.close()
