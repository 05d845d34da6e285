"""Where the benchmarks run: the test services, in databases and a Redis db of their own.

Read from the environment only here (the harness is an edge):

- ``CELERY_DURABLE_BENCH_DATABASE_URL``: any database URL on the PostgreSQL server to
  use (default ``postgresql://postgres@127.0.0.1:5432/postgres``); each benchmark
  creates and drops its own ``celery_durable_bench_<name>`` database there.
- ``CELERY_DURABLE_BENCH_BROKER_URL``: the Redis broker (default database 11, which
  the benchmarks flush).
- ``CELERY_DURABLE_BENCH_DATABASE_PREFIX``: the benchmark databases' prefix (default
  ``celery_durable_bench``): runs that share a server at the same time each take their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get(
    "CELERY_DURABLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("CELERY_DURABLE_BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")
# Another prefix keeps benchmarks run side by side (several checkouts) apart.
DATABASE_PREFIX = os.environ.get("CELERY_DURABLE_BENCH_DATABASE_PREFIX", "celery_durable_bench")
# The queue nothing consumes: the Celery app's default (in-process enqueues land here).
IDLE_QUEUE = "celery_durable_bench_idle"


def database_url(suffix: str) -> str:
    """The URL of benchmark database ``celery_durable_bench_<suffix>``."""
    name = f"{DATABASE_PREFIX}_{suffix}"
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def admin_url() -> str:
    """The server's ``postgres`` database: for DDL and for reading statistics."""
    return make_url(SERVER_URL).set(database="postgres").render_as_string(hide_password=False)
