"""I/O-bound steps on every pool (issue 16): ten 20 ms waits, durable or plain.

For each setting (prefork -c 2, threads -c 32, gevent -c 200), one ``celery worker``
subprocess with that pool and concurrency (Redis broker) drains, side by side in the
same repetitions, batches of

- celery_durable workflows (``bench.ten_waits``): ten ``@DBOS.step()``s, each a 20 ms
  ``time.sleep`` (an API call's wait; gevent's monkeypatching makes it cooperative),
  enqueued with ``DBOSClient``;
- plain Celery tasks (``bench.plain_ten_waits_task``) doing the same ten waits;
- the ceiling (``bench.floor_ten_waits_task``): plain tasks doing the same ten waits
  with a synchronous single-row INSERT after each, one before and one after (12, the
  statement budget of a ten-step workflow), on at most
  ``bench.workflows.FLOOR_CONNECTIONS`` connections per process,

each enqueued from this one process to a fresh queue the worker consumes only once it
is full (see :mod:`bench.throughput` for how a drain is timed). For the durable side it
also reports what the worker cost (:mod:`bench.resources`): its PostgreSQL connections,
its memory, and CPU per workflow in the worker and in its PostgreSQL backends.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.pools import (
    Bench,
    Kind,
    Measured,
    Setting,
    plain_and_ceiling_cpu,
    ratio,
    usage_figures,
)
from bench.report import Figure, Result
from bench.settings import database_url
from bench.throughput import Batches
from bench.workflows import floor_ten_waits_task, plain_ten_waits_task

NAME = "io_bound"
WORKFLOW_NAME = "bench.ten_waits"


@dataclass(frozen=True, kw_only=True)
class Params:
    settings: tuple[Setting, ...]
    repetitions: int
    warmup: int
    timeout_seconds: float


FULL = Params(
    settings=(
        Setting(pool="prefork", concurrency=2, batch=60),
        Setting(pool="threads", concurrency=32, batch=480),
        Setting(pool="gevent", concurrency=200, batch=1200),
    ),
    repetitions=2,
    warmup=20,
    timeout_seconds=600,
)
QUICK = Params(
    settings=(Setting(pool="gevent", concurrency=4, batch=8),),
    repetitions=1,
    warmup=3,
    timeout_seconds=60,
)


def _workflows(batches: Batches, size: int) -> float:
    return batches.workflows(size, WORKFLOW_NAME)


def _plain(batches: Batches, size: int) -> float:
    return batches.plain(size, plain_ten_waits_task)


def _ceiling(batches: Batches, size: int) -> float:
    return batches.plain(size, floor_ten_waits_task)


KINDS: dict[str, Kind] = {"workflows": _workflows, "plain": _plain, "ceiling": _ceiling}


def figures(measured: Measured) -> list[Figure]:
    label = measured.setting.label
    batch = measured.setting.batch
    return [
        Figure.of(
            f"{label}: plain Celery, {batch} tasks of ten 20 ms waits",
            measured.rates["plain"],
            "tasks/s",
            "1 worker",
        ),
        Figure.of(
            f"{label}: celery_durable, {batch} workflows of ten 20 ms steps",
            measured.rates["workflows"],
            "wf/s",
            "same worker",
        ),
        Figure.of(
            f"{label}: ceiling, {batch} tasks of ten 20 ms waits and 12 INSERTs",
            measured.rates["ceiling"],
            "tasks/s",
            "same worker; an INSERT after each wait, one before, one after",
        ),
        Figure.of(
            f"{label}: celery_durable ÷ plain Celery",
            ratio(measured, "workflows", "plain"),
            "x",
            "pairwise",
        ),
        Figure.of(
            f"{label}: ceiling ÷ plain Celery",
            ratio(measured, "ceiling", "plain"),
            "x",
            "pairwise",
        ),
        Figure.of(
            f"{label}: celery_durable ÷ ceiling",
            ratio(measured, "workflows", "ceiling"),
            "x",
            "pairwise",
        ),
        *usage_figures(measured, "workflows", f"psycopg wait: {measured.psycopg_wait}"),
        *plain_and_ceiling_cpu(measured),
    ]


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    logs = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    bench = Bench(database_url(NAME), logs / NAME, params.timeout_seconds)
    results: list[Figure] = []
    try:
        for setting in params.settings:
            measured = bench.measure(
                setting, KINDS, repetitions=params.repetitions, warmup=params.warmup
            )
            results.extend(figures(measured))
    finally:
        bench.close()
    return Result(
        benchmark=NAME,
        figures=results,
        params={**asdict(params), "worker_logs": str(logs / NAME)},
    )
