"""A workflow's timeline: one row per step, one bar per attempt on a shared time axis,
with the backoff waits between attempts. Positions are percentages of the axis.

Pure: built from the step documents of :func:`celery_durable.dashboard.documents.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery_durable.dashboard.documents import HIDDEN

# The narrowest bar drawn, in percent of the axis: an attempt of a millisecond shows.
MIN_WIDTH = 0.6
_NICE_STEPS_MS = [
    scale * unit
    for unit in (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    for scale in (1, 2, 5)
]


@dataclass(frozen=True, kw_only=True)
class Bar:
    """An attempt (``kind``: success, failed, error, running) or a wait (backoff)."""

    kind: str
    left: float
    width: float
    text: str
    attempt: int | None = None


@dataclass(frozen=True, kw_only=True)
class Row:
    function_id: int
    function_name: str
    status: str
    attempts: int
    duration: str
    child_workflow_id: str | None
    bars: list[Bar]


@dataclass(frozen=True, kw_only=True)
class Timeline:
    rows: list[Row]
    ticks: list[tuple[float, str]]
    span: str


def duration(ms: float | None) -> str:
    """Milliseconds as a short reading: ``850ms``, ``2.35s``, ``4m05s``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m{seconds:02d}s"


def build(
    steps: list[dict[str, Any]],
    *,
    origin_ms: int,
    end_ms: int,
    running: dict[str, Any] | None = None,
) -> Timeline:
    """The timeline of ``steps`` on the axis from ``origin_ms`` to ``end_ms`` (both
    widened to cover every attempt and wait). ``running`` (see
    :func:`celery_durable.service.progress.running_now`) without a step between attempts
    adds a row for the operation that runs after the last recorded one."""
    moments = [origin_ms, end_ms]
    for step in steps:
        for attempt in step["attempt_history"]:
            moments.append(attempt["started_at_epoch_ms"])
            moments.append(attempt["completed_at_epoch_ms"] or end_ms)
        if step["retry_due_at_epoch_ms"] is not None:
            moments.append(step["retry_due_at_epoch_ms"])
    origin, end = min(moments), max(moments)
    span = max(end - origin, 1)
    axis = _Axis(origin=origin, span=span, end=end)
    rows = [_row(step, axis) for step in steps]
    if running is not None and running["step"] is None:
        rows.append(_running_row(steps, running, axis))
    return Timeline(
        rows=rows,
        ticks=_ticks(span),
        span=duration(span),
    )


@dataclass(frozen=True)
class _Axis:
    origin: int
    span: int
    end: int

    def bar(self, kind: str, start: int, stop: int, text: str, attempt: int | None) -> Bar:
        left = 100.0 * (start - self.origin) / self.span
        width = max(100.0 * (stop - start) / self.span, MIN_WIDTH)
        return Bar(
            kind=kind, left=min(left, 100.0 - MIN_WIDTH), width=width, text=text, attempt=attempt
        )


def _row(step: dict[str, Any], axis: _Axis) -> Row:
    bars: list[Bar] = []
    previous_end: int | None = None
    for attempt in step["attempt_history"]:
        started = attempt["started_at_epoch_ms"]
        completed = attempt["completed_at_epoch_ms"]
        if previous_end is not None and started > previous_end:
            wait = f"backoff {duration(started - previous_end)}"
            bars.append(axis.bar("backoff", previous_end, started, wait, None))
        stop = completed if completed is not None else axis.end
        bars.append(axis.bar(attempt["outcome"], started, stop, _text(attempt), attempt["attempt"]))
        previous_end = completed
    due = step["retry_due_at_epoch_ms"]
    if step["status"] == "waiting" and previous_end is not None and due is not None:
        bars.append(
            axis.bar(
                "backoff",
                previous_end,
                due,
                f"next attempt due in {duration(due - previous_end)}",
                None,
            )
        )
    first, last = step["started_at_epoch_ms"], step["completed_at_epoch_ms"]
    return Row(
        function_id=step["function_id"],
        function_name=step["function_name"],
        status=step["status"],
        attempts=step["attempts"],
        duration=duration(None if last is None else last - first),
        child_workflow_id=step["child_workflow_id"],
        bars=bars,
    )


def _running_row(steps: list[dict[str, Any]], running: dict[str, Any], axis: _Axis) -> Row:
    """The operation after the last recorded one, running since that one ended (or
    since the claim, if later)."""
    ends = [s["completed_at_epoch_ms"] for s in steps if s["completed_at_epoch_ms"]]
    start = max([running["since_epoch_ms"], *ends])
    return Row(
        function_id=running["after_step"] + 1,
        function_name="running now",
        status="running",
        attempts=1,
        duration=duration(axis.end - start),
        child_workflow_id=None,
        bars=[
            axis.bar(
                "running", start, axis.end, f"running since {duration(axis.end - start)} ago", None
            )
        ],
    )


def _text(attempt: dict[str, Any]) -> str:
    label = attempt.get("label", attempt["attempt"])
    text = f"attempt {label}: {attempt['outcome']}, {duration(attempt['duration_ms'])}"
    if attempt["error"] is not None:
        text += f" — {attempt['error']['type']}"
        if attempt["error"]["message"] != HIDDEN:  # said once, outside the timeline
            text += f": {attempt['error']['message']}"
    return text


def _ticks(span: int) -> list[tuple[float, str]]:
    """Round times along the axis, about five of them."""
    step = next((s for s in _NICE_STEPS_MS if span / s <= 6), _NICE_STEPS_MS[-1])
    return [(100.0 * t / span, "+" + duration(t)) for t in range(0, span + 1, step)]
