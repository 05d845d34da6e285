"""Medians, pairwise ratios, and interleaved repetitions.

Machine drift (another process, CPU frequency, autovacuum) moves every measurement
taken at the same moment the same way. So the variants of a benchmark run in the same
repetition, one after the other, in an order rotated every repetition; a ratio is
computed within each repetition and the median of those ratios reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def pairwise_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``numerators[i] / denominators[i]`` for each repetition ``i``."""
    if len(numerators) != len(denominators):
        raise ValueError("pairwise ratios need as many numerators as denominators")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def pairwise_differences(minuends: Sequence[float], subtrahends: Sequence[float]) -> list[float]:
    """``minuends[i] - subtrahends[i]`` for each repetition ``i``."""
    return [a - b for a, b in zip(minuends, subtrahends, strict=True)]


def interleaved(
    repetitions: int, variants: dict[str, Callable[[], float]]
) -> dict[str, list[float]]:
    """Runs every variant once per repetition, rotating their order each time.

    Returns:
        Each variant's value in every repetition, in repetition order.
    """
    names = list(variants)
    values: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(variants[name]())
    return values


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.9: the 90th percentile), interpolated linearly between
    the sorted values (the "inclusive" method: the minimum is 0, the maximum 1)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within [0, 1], not {fraction}")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))
