"""The workflows of the Flower test (``tests/integration/test_flower.py``).

The test runs them on the deployable worker, ``celery -A worker.app worker`` with
``CELERY_DURABLE_IMPORTS=tests.integration.flower_app``, so that Flower is checked against the
configuration the stack runs (task events on, prefetch 1). Its
``CELERY_DURABLE_MAX_BROKER_DELAY_SECONDS`` (2 s) lies between the two kinds of delay
below: ``charge_payment``'s waits ride the broker as countdowns, ``reserve_stock``'s is
parked in PostgreSQL.
"""

from __future__ import annotations

from celery_durable import DBOS

RETRY_INTERVAL_SECONDS = 0.5
PARKED_DELAY_SECONDS = 2.5


def _attempt() -> int:
    """The running attempt, 0-based; durable, so any worker process sees the same one."""
    status = DBOS.step_status
    assert status is not None and status.current_attempt is not None
    return status.current_attempt


@DBOS.step(max_attempts=5, interval_seconds=RETRY_INTERVAL_SECONDS, backoff_rate=2.0)
def charge_payment(order_id: str) -> str:
    """Fails on its first two attempts (waits 0.5 s, then 1 s), then succeeds."""
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
