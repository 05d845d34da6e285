"""The worker app of the Flower test (``tests/test_flower.py``).

Run as ``celery -A tests.flower_app worker`` in a subprocess, configured from
``CD_FLOWER_*`` environment variables. Flower sees only Celery events, so the app turns
them on itself (what ``celery worker -E`` does), and ``task_send_sent_event`` makes each
retry's publish carry its ``retries`` and ``eta`` to Flower at once.
"""

from __future__ import annotations

import os

from celery import Celery

from celery_durable import DBOS

DATABASE_URL = os.environ["CD_FLOWER_DATABASE_URL"]
BROKER_URL = os.environ["CD_FLOWER_BROKER_URL"]
RETRY_INTERVAL_SECONDS = float(os.environ.get("CD_FLOWER_RETRY_INTERVAL_SECONDS", "0.5"))
# Delays longer than this are parked in PostgreSQL instead of riding the broker.
MAX_BROKER_DELAY_SECONDS = float(os.environ.get("CD_FLOWER_MAX_BROKER_DELAY_SECONDS", "2"))
PARKED_DELAY_SECONDS = float(os.environ.get("CD_FLOWER_PARKED_DELAY_SECONDS", "2.5"))

app = Celery("flower_app", broker=BROKER_URL)
app.conf.update(
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
DBOS(
    celery=app,
    config={
        "name": "flower_app",
        "system_database_url": DATABASE_URL,
        "max_broker_delay_seconds": MAX_BROKER_DELAY_SECONDS,
    },
)


def _attempt() -> int:
    """The running attempt, 0-based; durable, so any worker process sees the same one."""
    status = DBOS.step_status
    assert status is not None and status.current_attempt is not None
    return status.current_attempt


@DBOS.step(max_attempts=5, interval_seconds=RETRY_INTERVAL_SECONDS, backoff_rate=2.0)
def charge_payment(order_id: str) -> str:
    """Fails on its first two attempts, as a flaky payment service would."""
    if _attempt() < 2:
        raise ConnectionError("timeout")
    return f"charged {order_id}"


@DBOS.workflow()
def flower_checkout(order_id: str) -> str:
    return charge_payment(order_id)


@DBOS.step(max_attempts=2, interval_seconds=PARKED_DELAY_SECONDS)
def reserve_stock(order_id: str) -> str:
    """Fails once; its wait is longer than the broker may hold, so it is parked."""
    if _attempt() < 1:
        raise ConnectionError("warehouse offline")
    return f"reserved {order_id}"


@DBOS.workflow()
def flower_parked_checkout(order_id: str) -> str:
    return reserve_stock(order_id)
