"""The worker app of ``tests/integration/test_observability.py``:
``celery -A tests.integration.observability_app worker --pool=prefork --concurrency=2``,
configured from ``CD_OBS_*`` variables.

It exports metrics on ``CD_OBS_METRICS_PORT`` and writes every finished span, one JSON
line each, to ``CD_OBS_SPANS_FILE`` (each pool child appends its own). Its
TracerProvider is set after ``DBOS(...)``: the spans go to the application's provider
whenever it is set.

The workflows' module is imported before ``DBOS(...)`` here: decorators register at
import time, and a configuration registers every workflow declared so far.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from celery import Celery
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from celery_durable import DBOS
from tests.integration.observability_workflows import QUEUE

app = Celery("observability_app", broker=os.environ["CD_OBS_BROKER_URL"])
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
DBOS(
    celery=app,
    config={
        "name": "observability_app",
        "system_database_url": os.environ["CD_OBS_DATABASE_URL"],
        "metrics_port": int(os.environ["CD_OBS_METRICS_PORT"]),
        "metrics_host": "127.0.0.1",
        "recovery_interval_seconds": 1.0,
        "recovery_grace_seconds": float(os.environ.get("CD_OBS_GRACE_SECONDS", "5")),
    },
)


def span_record(span: ReadableSpan) -> dict[str, object]:
    """What the test reads of a span (ids in hex, as W3C trace context writes them)."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "pid": os.getpid(),
    }


class FileSpanExporter(SpanExporter):
    """Appends each finished span to a file, one JSON line per write."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as output:
            for span in spans:
                output.write(json.dumps(span_record(span)) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(os.environ["CD_OBS_SPANS_FILE"])))
trace.set_tracer_provider(provider)
