"""The dashboard's ``/metrics``: gauges read from the database at scrape time.

Labels are workflow names, statuses and queue names, never ids, so their number stays
bounded by the code, not by the traffic. (The workers export their own metrics.)
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from celery_durable.service.overview import Overview


class DatabaseCollector(Collector):
    """Counts workflows by name and status, and queue depths, on each scrape."""

    def __init__(self, overview: Overview) -> None:
        self._overview = overview

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workflows = GaugeMetricFamily(
            # A gauge: no _total suffix (Prometheus keeps that for counters).
            "celery_durable_workflows",
            "Workflows in the system database, by workflow name and status.",
            labels=["name", "status"],
        )
        for name, status, count in self._overview.counts_by_name_and_status():
            workflows.add_metric([name, status], count)
        depth = GaugeMetricFamily(
            "celery_durable_queue_depth",
            "Workflows waiting (ENQUEUED) or running (PENDING), by queue.",
            labels=["queue", "status"],
        )
        for queue in self._overview.queue_depths():
            depth.add_metric([queue.queue_name, "ENQUEUED"], queue.enqueued)
            depth.add_metric([queue.queue_name, "PENDING"], queue.pending)
        yield workflows
        yield depth


def registry(overview: Overview) -> CollectorRegistry:
    """A registry of only the database's gauges (no process metrics of the dashboard)."""
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(DatabaseCollector(overview))
    return collectors
