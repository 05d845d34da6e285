"""Per-step overhead: a 10-step workflow called in-process vs the same 10 plain calls.

Calling a workflow function runs it synchronously in this process, durably: the
workflow's row, the claim, one checkpoint INSERT per step and the outcome. Each
repetition times, in a rotated order, a batch of 10-step workflows, a batch of 0-step
workflows (the fixed cost of a workflow), a loop of 10 plain calls and a batch of
INSERTs (the floor, :mod:`bench.floor`); ratios are taken within each repetition.
The SQL is then counted on separate runs (listeners cost time).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench import counting
from bench.db import recreate_database
from bench.floor import InsertFloor
from bench.report import Figure, Result
from bench.settings import database_url
from bench.stats import interleaved, pairwise_differences, pairwise_ratios
from bench.workflows import configure, plain_ten, ten_steps, zero_steps
from celery_durable import DBOS

NAME = "step_overhead"
STEPS = 10


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    workflows: int  # per variant and repetition
    inserts: int  # floor INSERTs per repetition
    plain_loops: int  # loops of 10 plain calls per repetition
    counted_workflows: int


FULL = Params(repetitions=15, workflows=30, inserts=300, plain_loops=20_000, counted_workflows=50)
QUICK = Params(repetitions=3, workflows=3, inserts=20, plain_loops=100, counted_workflows=3)


def _median_call_us(workflow: Callable[[], Any], calls: int) -> float:
    durations: list[float] = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        workflow()
        durations.append((time.perf_counter_ns() - started) / 1000)
    return float(statistics.median(durations))


def _plain_loop_us(loops: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(loops):
        plain_ten()
    return (time.perf_counter_ns() - started) / 1000 / loops


def run(params: Params = FULL) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    configure(url)
    try:
        floor = InsertFloor(url)
        try:
            for _ in range(5):  # warm the pool, the prepared statements, the caches
                ten_steps()
                zero_steps()
            floor.measure(20)
            times = interleaved(
                params.repetitions,
                {
                    "ten": lambda: _median_call_us(ten_steps, params.workflows),
                    "zero": lambda: _median_call_us(zero_steps, params.workflows),
                    "plain": lambda: _plain_loop_us(params.plain_loops),
                    "floor": lambda: floor.measure(params.inserts),
                },
            )
        finally:
            floor.close()
        ten_counts = counting.count(
            url, lambda: [ten_steps() for _ in range(params.counted_workflows)]
        )
        zero_counts = counting.count(
            url, lambda: [zero_steps() for _ in range(params.counted_workflows)]
        )
    finally:
        DBOS.destroy()
    return Result(
        benchmark=NAME,
        figures=_figures(times, ten_counts, zero_counts, params.counted_workflows),
        params={
            **asdict(params),
            "counts_10_step": _raw(ten_counts),
            "counts_0_step": _raw(zero_counts),
            "statements_of_one_10_step_workflow": [
                counting.statement_kind(s)
                for s in ten_counts.statement_log[
                    : len(ten_counts.statement_log) // params.counted_workflows
                ]
            ],
        },
    )


def _raw(counts: counting.Counts) -> dict[str, int]:
    return {
        "statements": counts.statements,
        "server_transactions": counts.server_transactions,
        "connections_opened": counts.connections,
        "commit_events": counts.commit_events,
        "rollback_events": counts.rollback_events,
        "checkouts": counts.checkouts,
    }


def _figures(
    times: dict[str, list[float]],
    ten: counting.Counts,
    zero: counting.Counts,
    workflows: int,
) -> list[Figure]:
    durable = [t / STEPS for t in times["ten"]]
    plain = [t / STEPS for t in times["plain"]]
    overhead = pairwise_differences(durable, plain)
    marginal = [(t - z) / STEPS for t, z in zip(times["ten"], times["zero"], strict=True)]
    floor = times["floor"]
    per_step = workflows * STEPS
    return [
        Figure.of("durable step (10-step workflow ÷ 10)", durable, "µs"),
        Figure.of("plain call (10 calls ÷ 10)", plain, "µs"),
        Figure.of("overhead per step (durable - plain)", overhead, "µs"),
        Figure.of("0-step workflow (fixed cost)", times["zero"], "µs"),
        Figure.of("marginal step ((10-step - 0-step) ÷ 10)", marginal, "µs"),
        Figure.of("INSERT floor (autocommit, synchronous)", floor, "µs", "bench.floor"),
        Figure.of("overhead per step ÷ floor", pairwise_ratios(overhead, floor), "x", "pairwise"),
        Figure.of("marginal step ÷ floor", pairwise_ratios(marginal, floor), "x", "pairwise"),
        Figure.count(
            "statements per 10-step workflow",
            ten.statements / workflows,
            "stmt",
            counting.summary(ten.statement_log[: len(ten.statement_log) // workflows]),
        ),
        Figure.count("statements per step (workflow ÷ 10)", ten.statements / per_step, "stmt"),
        Figure.count(
            "marginal statements per step",
            (ten.statements - zero.statements) / per_step,
            "stmt",
        ),
        Figure.count(
            "server transactions per 10-step workflow",
            ten.work_transactions / workflows,
            "xact",
            "pg_stat_database, less connection start-ups",
        ),
        Figure.count(
            "marginal server transactions per step",
            (ten.server_transactions - zero.server_transactions) / per_step,
            "xact",
            "pg_stat_database",
        ),
        Figure.count(
            "SQLAlchemy commit events per workflow",
            ten.commit_events / workflows,
            "events",
            "0: AUTOCOMMIT",
        ),
        Figure.count("pool checkouts per workflow", ten.checkouts / workflows, "checkouts"),
    ]
