"""The demo workflows behind ``celery-durable demo``.

Importing this module builds its Celery app and DBOS from ``CELERY_DURABLE_BROKER_URL``
and ``CELERY_DURABLE_DATABASE_URL``, which the CLI sets (to its own embedded servers
unless given ``--database-url``/``--broker-url``) before it starts ``celery -A
celery_durable.cli.demo_app worker``. The CLI process itself never imports it: it
enqueues the demo workflows by name.
"""

from __future__ import annotations

import os

from celery import Celery

from celery_durable import DBOS
from celery_durable.core import environment
from celery_durable.error import DBOSMaxStepRetriesExceeded

app = Celery("celery_durable_demo", broker=os.environ.get(environment.BROKER_URL))
app.conf.update(
    # A queue of its own: no other worker on the broker takes the demo's messages.
    task_default_queue="celery_durable_demo",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
)
DBOS(
    celery=app,
    config={
        "name": "celery_durable_demo",
        "system_database_url": os.environ.get(environment.DATABASE_URL, ""),
    },
)


@DBOS.step(max_attempts=4, interval_seconds=0.5, backoff_rate=2.0)
def call_flaky_api(order_id: str) -> dict[str, str]:
    """Fails on its first two attempts, as a flaky service would."""
    status = DBOS.step_status
    attempt = status.current_attempt if status and status.current_attempt is not None else 0
    DBOS.logger.info("call_flaky_api(%s): attempt %d", order_id, attempt + 1)
    if attempt < 2:
        raise ConnectionError(f"service unavailable (attempt {attempt + 1})")
    return {"order_id": order_id, "charged": "yes"}


@DBOS.step(max_attempts=3, interval_seconds=0.5, backoff_rate=2.0)
def reserve_stock(order_id: str) -> None:
    """Never succeeds: the warehouse is out of stock."""
    raise RuntimeError(f"no stock for {order_id}")


@DBOS.step()
def refund(order_id: str) -> str:
    return f"refunded {order_id}"


@DBOS.workflow()
def flaky_order(order_id: str) -> dict[str, str]:
    return call_flaky_api(order_id)


@DBOS.workflow()
def compensated_order(order_id: str) -> str:
    charge = call_flaky_api(order_id)
    try:
        reserve_stock(order_id)
    except DBOSMaxStepRetriesExceeded:
        return refund(charge["order_id"])
    return "shipped"
