"""Figures across benchmarks: celery_durable next to DBOS Transact and plain Celery.

These compare medians of different benchmarks (different moments of the run, and for
DBOS a different process), so they are ratios of medians, not pairwise ratios; the
pairwise ones are inside each benchmark (each against its own INSERT floor or plain
baseline, measured in the same repetitions).
"""

from __future__ import annotations

from bench.report import Figure, Result

NAME = "comparison"


def _value(
    results: dict[str, Result], benchmark: str, *, label_start: str = "", unit: str = ""
) -> float | None:
    """The first figure of ``benchmark`` whose label starts so (and of that unit)."""
    result = results.get(benchmark)
    if result is None or result.skipped is not None:
        return None
    for figure in result.figures:
        if figure.label.startswith(label_start) and (not unit or figure.unit == unit):
            return figure.value
    return None


def compare(results: list[Result]) -> Result | None:
    by_name = {result.benchmark: result for result in results}
    figures: list[Figure] = []
    ours = _value(by_name, "step_overhead", label_start="overhead per step (")
    theirs = _value(by_name, "dbos_transact", label_start="overhead per step (")
    if ours and theirs:
        figures.append(
            Figure.count(
                "per-step overhead: DBOS ÷ celery_durable",
                theirs / ours,
                "x",
                "ratio of medians",
            )
        )
    ours_floor = _value(by_name, "step_overhead", label_start="overhead per step ÷ floor")
    theirs_floor = _value(by_name, "dbos_transact", label_start="overhead per step ÷ floor")
    if ours_floor and theirs_floor:
        figures.append(
            Figure.count(
                "overhead ÷ floor: celery_durable vs DBOS",
                ours_floor,
                "x",
                f"DBOS: {theirs_floor:.1f}x",
            )
        )
    ours_rate = _value(by_name, "throughput", label_start="celery_durable:")
    theirs_rate = _value(by_name, "dbos_transact", unit="wf/s")
    if ours_rate and theirs_rate:
        figures.append(
            Figure.count(
                "throughput: celery_durable ÷ DBOS queue",
                ours_rate / theirs_rate,
                "x",
                "ratio of medians",
            )
        )
    if not figures:
        return None
    return Result(benchmark=NAME, figures=figures)
