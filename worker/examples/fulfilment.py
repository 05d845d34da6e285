"""Order fulfilment in focused steps, after the specification's best practices.

Each non-deterministic operation (an id, the time, an external call) is its own step,
so a replay after a crash reuses the recorded shipment id and timestamp instead of
making new ones. The notification (``retries_allowed=False``) is never retried; like
any step, it runs again only if its worker dies before its checkpoint commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from celery_durable import DBOS
from worker.examples import fakes
from worker.examples.payment import charge_payment


@DBOS.step()
def generate_random_id() -> str:
    return str(uuid.uuid4())


@DBOS.step()
def get_current_timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@DBOS.step(max_attempts=3, interval_seconds=0.5)
def reserve_inventory(order_id: str, items: list[str]) -> list[str]:
    return fakes.reserve(order_id, items)


@DBOS.step(retries_allowed=False)
def send_notification(message: str) -> dict[str, bool]:
    """Send once, never retry"""
    return fakes.send(message)


@DBOS.workflow()
def fulfil_order(order_id: str, items: list[str]) -> dict[str, Any]:
    reserved = reserve_inventory(order_id, items)
    payment = charge_payment(order_id)
    shipment_id = generate_random_id()
    shipped_at = get_current_timestamp()
    send_notification(f"Order {order_id} shipped as {shipment_id}")
    return {
        "order_id": order_id,
        "payment_id": payment["payment_id"],
        "reserved": reserved,
        "shipment_id": shipment_id,
        "shipped_at": shipped_at,
    }
