"""Metrics and traces of a real prefork worker (``tests.integration.observability_app``,
2 children).

One scenario runs once for the module: workflows started by ``DBOS.start_workflow``,
``Queue.enqueue`` and ``DBOSClient.enqueue`` inside a producer span of this process
(the SDK's InMemorySpanExporter), more outside any span, and one left unpublished for
the worker's recovery sweep. Each workflow's first step fails once, so every workflow
is rescheduled once through a Celery retry. The worker's metrics are scraped from its
port; its spans are read from the file its children write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from celery_durable import DBOS, DBOSClient
from celery_durable.error import DBOSInitializationError
from tests.conftest import BROKER_URL, DATABASE_URL, recreate_database
from tests.integration.observability_workflows import QUEUE, obs_workflow, queue
from tests.integration.subprocesses import CELERY, free_port, spawn, wait_for
from worker.settings import from_environ

OBS_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_observability")
    .render_as_string(hide_password=False)
)
STARTED_OUTSIDE_ANY_SPAN = 3
# Each workflow: obs_flaky fails, is rescheduled, succeeds; then obs_pause.
CHECKPOINTS_PER_WORKFLOW = 3


@dataclass
class Scenario:
    request_span: ReadableSpan
    traced: dict[str, str]  # how it was started -> workflow id
    workflow_ids: list[str]
    pids: set[int]
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    worker_spans: list[dict[str, Any]]
    local_spans: list[ReadableSpan]


def _memory_exporter() -> InMemorySpanExporter:
    """This process's spans; the global provider is set once per process."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _metric(scenario: Scenario, sample: str, **labels: str) -> float:
    return scenario.metrics.get((sample, tuple(sorted(labels.items()))), 0.0)


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _finished_executions(spans: list[dict[str, Any]]) -> int:
    return sum(
        1
        for s in spans
        if s["name"] == "workflow obs_workflow"
        and s["attributes"].get("celery_durable.outcome") == "success"
    )


@pytest.fixture(scope="module")
def scenario(dbos: type[DBOS], celery_app: Celery, tmp_path_factory: Any) -> Iterator[Scenario]:
    exporter = _memory_exporter()
    recreate_database(OBS_DATABASE_URL)
    redis.Redis.from_url(BROKER_URL).delete(QUEUE)
    logs = tmp_path_factory.mktemp("observability")
    spans_file, port = logs / "spans.jsonl", free_port()
    env = {
        **os.environ,
        "CD_OBS_DATABASE_URL": OBS_DATABASE_URL,
        "CD_OBS_BROKER_URL": BROKER_URL,
        "CD_OBS_METRICS_PORT": str(port),
        "CD_OBS_SPANS_FILE": str(spans_file),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    producer_app = Celery("observability_producer", broker=BROKER_URL)
    producer_app.conf.update(task_default_queue=QUEUE, broker_connection_retry_on_startup=True)
    DBOS(celery=producer_app, config={"name": "obs", "system_database_url": OBS_DATABASE_URL})
    DBOS.launch()
    worker = spawn(
        [
            *CELERY,
            "-A",
            "tests.integration.observability_app",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=observability-{uuid.uuid4().hex[:8]}@localhost",
        ],
        env,
        logs / "worker.log",
    )
    client = DBOSClient(OBS_DATABASE_URL, BROKER_URL)
    try:
        wait_for(lambda: "ready." in worker.output(), 60, "the worker", [worker])
        yield _run(exporter, client, port, spans_file, [worker])
    finally:
        worker.stop()
        client.destroy()
        DBOS(celery=celery_app, config={"name": "tests", "system_database_url": DATABASE_URL})
        DBOS.launch()


def _run(
    exporter: InMemorySpanExporter, client: DBOSClient, port: int, spans: Path, workers: list[Any]
) -> Scenario:
    tracer = trace.get_tracer("tests.observability")
    with tracer.start_as_current_span("web request"):
        traced = {
            "start_workflow": DBOS.start_workflow(obs_workflow, "start").workflow_id,
            "queue": queue.enqueue(obs_workflow, "queue").workflow_id,
        }
        # The client needs the name registered by a worker: the two above ran there.
        DBOS.retrieve_workflow(traced["queue"]).get_result(timeout=60)
        traced["client"] = client.enqueue(
            {"workflow_name": "obs_workflow", "queue_name": QUEUE}, "client"
        ).workflow_id
    ids = list(traced.values())
    ids += [
        DBOS.start_workflow(obs_workflow, f"plain-{n}").workflow_id
        for n in range(STARTED_OUTSIDE_ANY_SPAN)
    ]
    # Written, never published: the worker's recovery sweep publishes it.
    runtime = DBOS._service().runtime
    spec = DBOS._registry.get("obs_workflow")
    assert spec is not None
    row = runtime.starter.new_row(spec, ("recovered",), {}, status="ENQUEUED")
    runtime.starter.insert(row)
    ids.append(row.workflow_uuid)
    pids = {DBOS.retrieve_workflow(i).get_result(timeout=60) for i in ids}
    wait_for(
        lambda: _finished_executions(_spans(spans)) == len(ids), 30, "the worker's spans", workers
    )
    wait_for(
        lambda: _scrape(port).get(("celery_durable_recovered_total", ()), 0) >= 1,
        30,
        "the recovered workflow's count",
        workers,
    )
    with tracer.start_as_current_span("direct call"):
        obs_workflow("direct")
    return Scenario(
        request_span=next(s for s in exporter.get_finished_spans() if s.name == "web request"),
        traced=traced,
        workflow_ids=ids,
        pids=pids,
        metrics=_scrape(port),
        worker_spans=_spans(spans),
        local_spans=list(exporter.get_finished_spans()),
    )


def test_metrics_add_up_across_the_pool_children(scenario: Scenario) -> None:
    workflows = len(scenario.workflow_ids)
    assert len(scenario.pids) == 2, "both pool children ran workflows"
    attempts = "celery_durable_step_attempts_total"
    assert _metric(scenario, attempts, step="obs_flaky", outcome="retry") == workflows
    assert _metric(scenario, attempts, step="obs_flaky", outcome="success") == workflows
    assert _metric(scenario, attempts, step="obs_pause", outcome="success") == workflows
    assert _metric(scenario, attempts, step="obs_flaky", outcome="error") == 0
    assert _metric(scenario, "celery_durable_step_retries_total", step="obs_flaky") == workflows
    assert _metric(scenario, "celery_durable_step_retries_total", step="obs_pause") == 0
    executions = "celery_durable_workflow_executions_total"
    assert _metric(scenario, executions, name="obs_workflow", outcome="success") == workflows
    assert _metric(scenario, executions, name="obs_workflow", outcome="rescheduled") == workflows
    assert _metric(scenario, "celery_durable_recovered_total") == 1
    assert (
        _metric(scenario, "celery_durable_checkpoint_seconds_count")
        == workflows * CHECKPOINTS_PER_WORKFLOW
    )
    assert _metric(scenario, "celery_durable_checkpoint_seconds_sum") > 0
    duration = "celery_durable_step_duration_seconds"
    assert _metric(scenario, f"{duration}_count", step="obs_pause") == workflows
    # obs_pause sleeps 0.3 s: every attempt lands above the 0.25 s bucket.
    assert _metric(scenario, f"{duration}_bucket", step="obs_pause", le="0.25") == 0
    assert _metric(scenario, f"{duration}_bucket", step="obs_pause", le="0.5") == workflows
    # Labels are names, never ids.
    labels = {value for (_, sample_labels) in scenario.metrics for _, value in sample_labels}
    assert not labels & set(scenario.workflow_ids)


def test_a_producer_span_contains_the_workflow_executions_and_step_attempts(
    scenario: Scenario,
) -> None:
    request = scenario.request_span.get_span_context()
    trace_id, request_id = f"{request.trace_id:032x}", f"{request.span_id:016x}"
    for how, workflow_id in scenario.traced.items():
        spans = [
            s
            for s in scenario.worker_spans
            if s["attributes"].get("celery_durable.workflow.id") == workflow_id
        ]
        executions = [s for s in spans if s["name"] == "workflow obs_workflow"]
        # The first execution is rescheduled by the failed attempt; a retry finishes it.
        assert sorted(s["attributes"]["celery_durable.outcome"] for s in executions) == [
            "rescheduled",
            "success",
        ], how
        assert {(s["trace_id"], s["parent_id"]) for s in executions} == {(trace_id, request_id)}
        steps = sorted(
            (
                s["attributes"]["celery_durable.step.name"],
                s["attributes"]["celery_durable.step.id"],
                s["attributes"]["celery_durable.step.attempt"],
                s["attributes"]["celery_durable.outcome"],
                s["status"],
            )
            for s in spans
            if s["name"].startswith("step ")
        )
        assert steps == [
            ("obs_flaky", 1, 1, "retry", "ERROR"),
            ("obs_flaky", 1, 2, "success", "UNSET"),
            ("obs_pause", 2, 1, "success", "UNSET"),
        ], how
        execution_ids = {s["span_id"] for s in executions}
        assert all(
            s["parent_id"] in execution_ids and s["trace_id"] == trace_id
            for s in spans
            if s["name"].startswith("step ")
        ), how


def test_executions_started_outside_any_span_start_traces_of_their_own(
    scenario: Scenario,
) -> None:
    request_trace = f"{scenario.request_span.get_span_context().trace_id:032x}"
    untraced = set(scenario.workflow_ids) - set(scenario.traced.values())
    executions = [
        s
        for s in scenario.worker_spans
        if s["attributes"].get("celery_durable.workflow.id") in untraced
        and s["name"] == "workflow obs_workflow"
    ]
    assert len(executions) == 2 * len(untraced)
    assert all(s["trace_id"] != request_trace for s in executions)


def test_a_direct_call_is_traced_in_the_callers_trace(scenario: Scenario) -> None:
    spans = {s.name: s for s in scenario.local_spans}
    caller, workflow = spans["direct call"], spans["workflow obs_workflow"]
    assert workflow.parent is not None
    assert workflow.parent.span_id == caller.get_span_context().span_id
    assert workflow.get_span_context().trace_id == caller.get_span_context().trace_id
    steps = [s for s in scenario.local_spans if s.name.startswith("step ")]
    # In-process, the failed attempt waits here and the retry runs in the same execution.
    assert [(s.name, (s.attributes or {}).get("celery_durable.outcome")) for s in steps] == [
        ("step obs_flaky", "retry"),
        ("step obs_flaky", "success"),
        ("step obs_pause", "success"),
    ]
    assert all(
        s.parent is not None and s.parent.span_id == workflow.get_span_context().span_id
        for s in steps
    )


NO_EXTRAS = """
import sys
from celery import Celery
from celery_durable import DBOS

app = Celery("no_extras", broker="memory://")
DBOS(celery=app, config={"name": "no_extras", "system_database_url": sys.argv[1],
                         "tracing": sys.argv[2] == "on"})
DBOS.launch()

@DBOS.step()
def one() -> int:
    return 1

@DBOS.workflow()
def run() -> int:
    return one()

assert run() == 1
print(sorted({m.split(".")[0] for m in sys.modules} & {"prometheus_client", "opentelemetry"}))
"""


@pytest.mark.parametrize(("tracing", "imported"), [("off", "[]"), ("on", "['opentelemetry']")])
def test_without_metrics_or_tracing_nothing_of_them_is_imported(
    dbos: type[DBOS], tracing: str, imported: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_EXTRAS, DATABASE_URL, tracing],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported


def test_the_worker_reads_its_metrics_port_from_the_environment() -> None:
    base = {"CELERY_DURABLE_DATABASE_URL": DATABASE_URL, "CELERY_BROKER_URL": BROKER_URL}
    assert "metrics_port" not in from_environ(base).dbos_config()
    config = from_environ({**base, "CELERY_DURABLE_METRICS_PORT": "9108"}).dbos_config()
    assert config["metrics_port"] == 9108
    with pytest.raises(DBOSInitializationError, match="CELERY_DURABLE_METRICS_PORT"):
        from_environ({**base, "CELERY_DURABLE_METRICS_PORT": "ninety"})
