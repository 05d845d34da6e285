"""The cost of metrics and traces on the hot path: a 10-step workflow with each observer.

One process, one database; each repetition times, in a rotated order, the same batch of
10-step workflows called in-process (claim, 10 checkpoint INSERTs, outcome) with:

- ``off``: no probe (what runs when neither extra is installed, or both are off);
- ``metrics``: the Prometheus probe, in multiprocess mode (files in a temporary
  ``PROMETHEUS_MULTIPROC_DIR``), as in a worker that exports metrics;
- ``tracing``: the OpenTelemetry probe with an SDK TracerProvider whose spans go through
  a BatchSpanProcessor to an exporter that drops them (the export is not measured);
- ``tracing, no SDK``: the probe with no provider set (``opentelemetry-api`` installed,
  no SDK configured: the default when the extra is installed but nothing exports);
- ``metrics + tracing``: both.

Ratios are each variant's time over ``off`` in the same repetition. A workflow's time
varies by more than the probes cost, so each probe's own cost is also timed without the
database: the calls one step makes (an attempt's start and end, a checkpoint's round
trip), plus a tenth of one execution's start and end, in a loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from bench.db import recreate_database
from bench.report import Figure, Result
from bench.settings import database_url
from bench.stats import interleaved, pairwise_differences, pairwise_ratios
from bench.workflows import configure, ten_steps
from celery_durable import DBOS
from celery_durable.core import instrumentation
from celery_durable.core.instrumentation import Probe

NAME = "observability"
STEPS = 10


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int
    workflows: int  # per variant and repetition
    probe_loops: int  # 10-step executions announced per variant and repetition


FULL = Params(repetitions=15, workflows=30, probe_loops=2000)
QUICK = Params(repetitions=2, workflows=2, probe_loops=10)


def _median_call_us(probe: Probe | None, calls: int) -> float:
    instrumentation.install(probe)
    durations: list[float] = []
    try:
        for _ in range(calls):
            started = time.perf_counter_ns()
            ten_steps()
            durations.append((time.perf_counter_ns() - started) / 1000)
    finally:
        instrumentation.install(None)
    return float(statistics.median(durations))


def _probe_us_per_step(probe: Probe | None, loops: int) -> float:
    """What a probe adds to one step of a 10-step workflow, in µs of CPU."""
    if probe is None:
        return 0.0
    started = time.perf_counter_ns()
    for index in range(loops):
        execution = probe.workflow_started("bench-workflow-id", "bench.ten_steps")
        for step in range(1, STEPS + 1):
            attempt = probe.step_started("bench-workflow-id", "bench.noop", step, 1)
            probe.checkpoint_recorded(0.0002)
            attempt.end("success")
        execution.end("success" if index % 2 else "error")
    return (time.perf_counter_ns() - started) / 1000 / (loops * STEPS)


def _probes() -> tuple[dict[str, Probe | None], Callable[[], None]]:
    """The variants' probes, and what to call when done."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.trace import NoOpTracerProvider

    from celery_durable.observability import probes
    from celery_durable.observability.exporter import MetricsExporter
    from celery_durable.observability.probes import FanOut
    from celery_durable.observability.tracing import Tracing

    class _Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    exporter = MetricsExporter(port=0)
    exporter.prepare()  # the multiprocess directory, as in a worker
    metrics = probes.enabled("metrics")
    assert metrics is not None
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    tracing = Tracing(provider)
    variants: dict[str, Probe | None] = {
        "off": None,
        "metrics": metrics,
        "tracing": tracing,
        "tracing, no SDK": Tracing(NoOpTracerProvider()),
        "metrics + tracing": FanOut([metrics, tracing]),
    }

    def close() -> None:
        exporter.stop()
        provider.shutdown()

    return variants, close


def run(params: Params = FULL) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    configure(url)
    configured = instrumentation.probe  # the configuration's own (tracing, by default)
    variants, close = _probes()
    try:
        for probe in variants.values():  # warm the pool, the statements, each probe
            _median_call_us(probe, 5)
        times = interleaved(
            params.repetitions,
            {
                name: (lambda probe=probe: _median_call_us(probe, params.workflows))
                for name, probe in variants.items()
            },
        )
        cpu = interleaved(
            params.repetitions,
            {
                name: (lambda probe=probe: _probe_us_per_step(probe, params.probe_loops))
                for name, probe in variants.items()
                if probe is not None
            },
        )
    finally:
        close()
        instrumentation.install(configured)
        DBOS.destroy()
    return Result(benchmark=NAME, figures=_figures(times, cpu), params=asdict(params))


def _figures(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> list[Figure]:
    off = times["off"]
    per_step = [t / STEPS for t in off]
    figures = [Figure.of("10-step workflow, off", off, "µs", "no probe")]
    for name, samples in times.items():
        if name == "off":
            continue
        added = [d / STEPS for d in pairwise_differences(samples, off)]
        figures += [
            Figure.of(f"10-step workflow, {name}", samples, "µs"),
            Figure.of(f"{name} ÷ off", pairwise_ratios(samples, off), "x", "pairwise"),
            Figure.of(f"{name}: added per step", added, "µs", "(workflow - off) ÷ 10"),
            Figure.of(f"{name}: probe CPU per step", cpu[name], "µs", "no database"),
            Figure.of(
                f"{name}: probe CPU ÷ durable step",
                pairwise_ratios(cpu[name], per_step),
                "x",
                "durable step: off ÷ 10",
            ),
        ]
    return figures
