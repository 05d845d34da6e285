"""Prometheus metrics and OpenTelemetry traces of workflow executions (optional extras).

The engine announces its moments through :mod:`celery_durable.core.instrumentation`;
the probes here turn them into metrics (:mod:`.metrics`, ``celery-durable[metrics]``)
and spans (:mod:`.tracing`, ``celery-durable[otel]``). Neither ``prometheus_client`` nor
``opentelemetry`` is imported until metrics are exported or tracing is on: without the
extras, nothing here costs anything.
"""
