"""An existing Celery app, as a team has before it uses celery_durable: it imports
nothing of celery_durable. ``worker.examples.server_report`` calls its task by name.

Run its workers on their own queue: ``celery -A worker.ops_tasks worker -Q ops``
(``CELERY_BROKER_URL`` names the broker, the same as the workflow workers').
"""

from __future__ import annotations

import os
import zlib

from celery import Celery

app = Celery("ops", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(task_default_queue="ops", broker_connection_retry_on_startup=True)


@app.task(name="ops.collect_stats")
def collect_stats(server: str) -> dict[str, float]:
    """One server's load. A server whose name ends in ``-down`` does not answer."""
    if server.endswith("-down"):
        raise ConnectionError(f"{server} does not answer")
    load = zlib.crc32(server.encode()) % 1000 / 100
    return {"load": load}


@app.task(name="ops.notify_customer")
def notify_customer(shipment: dict[str, object]) -> str:
    """Tells the customer (``worker.examples.canvas_orders`` chains it after a workflow)."""
    return f"customer of {shipment['order_id']} told: {shipment['label']}"
