"""Exporting a worker's metrics on a port, added up across its pool's processes.

prometheus_client's multiprocess mode: every process writes its metrics to files of its
own in ``PROMETHEUS_MULTIPROC_DIR``, and the worker's main process serves their sum. The
directory must be set before ``prometheus_client`` is first imported, and before the pool
forks, so :meth:`MetricsExporter.prepare` runs in the worker's bootstep constructor (the
pool's children inherit the probe and the variable); :meth:`MetricsExporter.serve` runs
once the worker has started. Unless the variable was set already, the directory is a
fresh temporary one that the exporter removes when the worker stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from celery_durable.error import DBOSInitializationError
from celery_durable.observability import probes

logger = logging.getLogger("celery_durable.metrics")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class MetricsExporter:
    """One worker's metrics endpoint (``/metrics`` on ``host:port``)."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self.directory: str | None = None
        self._owned_directory: str | None = None
        self._server: Any = None

    def prepare(self) -> None:
        """Counts from now on, in this process and in the children it forks."""
        directory = os.environ.get(MULTIPROC_DIR)
        if not directory:
            directory = tempfile.mkdtemp(prefix="celery-durable-metrics-")
            os.environ[MULTIPROC_DIR] = directory
            self._owned_directory = directory
        self.directory = directory
        try:
            from prometheus_client import values
        except ImportError as error:
            raise DBOSInitializationError(
                "metrics_port is set but prometheus_client is not installed: "
                "pip install 'celery-durable[metrics]'"
            ) from error
        if not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client was imported before the directory was set: Flower's
            # `celery` command plugin imports it when the celery CLI starts, before any
            # worker code runs. Metrics created from now on in this process (ours, and
            # the application's) keep their values in the directory.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        from celery_durable.observability.metrics import Metrics

        probes.enable("metrics", Metrics())

    def serve(self) -> None:
        """Starts the HTTP endpoint, in a thread of this (the worker's main) process."""
        if self._server is not None:
            return
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=registry)
        except OSError as error:
            raise DBOSInitializationError(
                f"cannot serve metrics on {self.host}:{self.port}: {error}"
            ) from error
        logger.info("Metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        """Stops serving and counting; removes the directory if it made it."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        probes.disable("metrics")
        owned, self._owned_directory = self._owned_directory, None
        if owned is not None:
            if os.environ.get(MULTIPROC_DIR) == owned:
                del os.environ[MULTIPROC_DIR]
            shutil.rmtree(owned, ignore_errors=True)
