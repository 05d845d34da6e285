"""Payment with compensation: the specification's error-handling example.

``charge_payment`` keeps the default retries (3 attempts, 1 s then 2 s apart). When
they are exhausted the workflow cancels the order and re-raises, so it ends in ERROR
(Flower: FAILURE with ``DBOSMaxStepRetriesExceeded``). Orders whose id starts with
``unreachable-`` take that path; any other order is charged and shipped.
"""

from __future__ import annotations

from celery_durable import DBOS
from celery_durable.error import DBOSMaxStepRetriesExceeded
from worker.examples import fakes


@DBOS.step()
def charge_payment(order_id: str) -> dict[str, str]:
    return fakes.charge(order_id)


@DBOS.step()
def cancel_order(order_id: str) -> str:
    return f"cancelled {order_id}"


@DBOS.step()
def ship_order(order_id: str) -> str:
    return f"shipped {order_id}"


@DBOS.workflow()
def resilient_workflow(order_id: str) -> str:
    try:
        # Try to process payment
        payment_result = charge_payment(order_id)
    except DBOSMaxStepRetriesExceeded:
        # Payment failed after all retries
        DBOS.logger.error(f"Payment failed for order {order_id}")
        cancel_order(order_id)
        raise

    # Continue with fulfillment
    DBOS.logger.info(f"Order {order_id} paid: {payment_result['payment_id']}")
    ship_order(order_id)
    return "completed"
