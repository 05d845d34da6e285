"""The worker's Prometheus metrics (``celery-durable[metrics]``).

Labels are names from the code (steps, workflows) and fixed outcome words, never ids, so
their number stays bounded. Workflows *by status* (``celery_durable_workflows``) and
queue depths are the dashboard's gauges, read from the database; a worker counts what it
executed, under other names.

Import this module only once ``PROMETHEUS_MULTIPROC_DIR`` is set
(:class:`~celery_durable.observability.exporter.MetricsExporter` does): the metrics are
then kept in per-process files that the exporter adds up across a prefork pool's children.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

from celery_durable.core.instrumentation import Observation

STEP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# A checkpoint is one INSERT's round trip: well under a millisecond on a local server.
CHECKPOINT_SECONDS_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1,
)


class Metrics:
    """A probe that counts into Prometheus metrics (registered nowhere: in multiprocess
    mode the exporter reads them from the files)."""

    def __init__(self) -> None:
        self.step_attempts = Counter(
            "celery_durable_step_attempts",
            "Step attempts, by step name and outcome (success, retry, error)",
            ["step", "outcome"],
            registry=None,
        )
        self.step_duration = Histogram(
            "celery_durable_step_duration_seconds",
            "Duration of one step attempt (its code and its checkpoint), by step name",
            ["step"],
            buckets=STEP_SECONDS_BUCKETS,
            registry=None,
        )
        self.step_retries = Counter(
            "celery_durable_step_retries",
            "Failed step attempts followed by another attempt, by step name",
            ["step"],
            registry=None,
        )
        self.workflow_executions = Counter(
            "celery_durable_workflow_executions",
            "Workflow executions (deliveries that ran its code), by workflow name and "
            "outcome (success, error, cancelled, rescheduled, interrupted)",
            ["name", "outcome"],
            registry=None,
        )
        self.recovered_total = Counter(
            "celery_durable_recovered",
            "Workflows published again by this worker's recovery sweeps",
            registry=None,
        )
        self.checkpoint = Histogram(
            "celery_durable_checkpoint_seconds",
            "Round trip of one checkpoint's statement (a step's INSERT)",
            buckets=CHECKPOINT_SECONDS_BUCKETS,
            registry=None,
        )

        # Each name's labelled series, looked up once (``labels`` takes a lock).
        self._steps: dict[str, _StepSeries] = {}
        self._executions: dict[tuple[str, str], Any] = {}

    def workflow_started(self, workflow_id: str, name: str) -> Observation:
        return _Execution(self, name)

    def step_started(
        self, workflow_id: str | None, step_name: str, step_id: int | None, attempt: int
    ) -> Observation:
        series = self._steps.get(step_name)
        if series is None:
            series = self._steps.setdefault(step_name, _StepSeries(self, step_name))
        return _Attempt(series)

    def executions(self, name: str, outcome: str) -> Any:
        key = (name, outcome)
        series = self._executions.get(key)
        if series is None:
            series = self._executions.setdefault(
                key, self.workflow_executions.labels(name, outcome)
            )
        return series

    def checkpoint_recorded(self, seconds: float) -> None:
        self.checkpoint.observe(seconds)

    def recovered(self, count: int) -> None:
        if count:
            self.recovered_total.inc(count)


class _StepSeries:
    """One step name's series."""

    def __init__(self, metrics: Metrics, step: str) -> None:
        self.duration = metrics.step_duration.labels(step)
        self.retries = metrics.step_retries.labels(step)
        self.attempts = {
            outcome: metrics.step_attempts.labels(step, outcome)
            for outcome in ("success", "retry", "error")
        }


class _Execution:
    def __init__(self, metrics: Metrics, name: str) -> None:
        self._metrics = metrics
        self._name = name

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        self._metrics.executions(self._name, outcome).inc()


class _Attempt:
    def __init__(self, series: _StepSeries) -> None:
        self._series = series
        self._started = time.perf_counter()

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        series = self._series
        series.duration.observe(time.perf_counter() - self._started)
        series.attempts[outcome].inc()
        if outcome == "retry":
            series.retries.inc()
