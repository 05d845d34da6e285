"""Publishing what a producer without a broker enqueued, from every worker.

``DBOSClient(system_database_url)`` needs no broker: it commits the workflow's row and
notifies the workers (LISTEN/NOTIFY). Each worker runs an :class:`EnqueueRelay`; the
first to advance the workflow's dispatch generation publishes its Celery message, so it
is published once however many workers hear of it. The recovery sweep is the fallback.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery

from celery_durable.integration.publishing import publish_workflow
from celery_durable.store import SystemStore
from celery_durable.store.enqueued_listener import listen_for_enqueued

logger = logging.getLogger("celery_durable.recovery")


class EnqueueRelay:
    """A daemon thread of a worker: hears of broker-less enqueues and publishes them."""

    def __init__(self, store: SystemStore, app: Celery) -> None:
        self._store = store
        self._app = app
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=listen_for_enqueued,
            args=(store.connections.session_url, self._publish, self._stopped),
            name="celery-durable-enqueue-relay",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _publish(self, workflow_id: str, generation: int) -> None:
        try:
            taken = self._store.operations.take_for_publishing(workflow_id, generation)
            if taken is not None:
                publish_workflow(
                    self._app,
                    taken.name,
                    taken.workflow_uuid,
                    queue=taken.queue_name,
                    generation=taken.generation,
                    trace=taken.trace_carrier,
                )
        except Exception:
            logger.exception(
                "Could not publish enqueued workflow %s; the recovery sweep will", workflow_id
            )
