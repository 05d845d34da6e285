"""A checkout that waits for its payment provider's webhook: events out, a message in.

The workflow opens a payment session and publishes its page as the event
``payment_url``; the web app sends the buyer there. Then it waits in ``DBOS.recv`` for
the provider's webhook, which the web app forwards as a message on the topic
``payment``, keyed by the provider's event id (``DBOSClient.send(...,
idempotency_key=...)``) so that a webhook the provider delivers twice counts once.
While it waits, the workflow holds no worker slot, and the message wakes it at once.

A successful payment confirms the order and publishes ``order_url``; no webhook within
the payment window (or a failed payment) cancels the order. Either way the workflow
ends by publishing ``order_status`` (``"paid"`` or ``"cancelled"``), the event the web
app waits for. ``worker/producer.py`` plays the web app and the provider.
"""

from __future__ import annotations

from typing import Any

from celery_durable import DBOS
from worker.examples import fakes

PAYMENT_TOPIC = "payment"
PAYMENT_URL = "payment_url"
ORDER_URL = "order_url"
ORDER_STATUS = "order_status"


@DBOS.step()
def open_payment_session(order_id: str) -> str:
    return fakes.payment_page(order_id)


@DBOS.step()
def confirm_order(order_id: str, payment_id: str) -> str:
    DBOS.logger.info(f"Order {order_id} paid by {payment_id}")
    return fakes.order_page(order_id)


@DBOS.step()
def cancel_unpaid_order(order_id: str) -> str:
    return f"cancelled {order_id}"


@DBOS.workflow()
def checkout(order_id: str, payment_window_seconds: float = 60.0) -> str:
    DBOS.set_event(PAYMENT_URL, open_payment_session(order_id))
    webhook: dict[str, Any] | None = DBOS.recv(
        PAYMENT_TOPIC, timeout_seconds=payment_window_seconds
    )
    if webhook is None or webhook.get("status") != "succeeded":
        cancel_unpaid_order(order_id)
        status = "cancelled"
    else:
        DBOS.set_event(ORDER_URL, confirm_order(order_id, webhook["payment_id"]))
        status = "paid"
    DBOS.set_event(ORDER_STATUS, status)
    return status
