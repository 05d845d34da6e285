"""Deterministic stand-ins for the services the examples call.

The examples must run anywhere (CI, the compose stack) without the internet, and fail
the same way on every worker: each failure depends only on the input and on the step's
attempt number, which celery_durable keeps in PostgreSQL (``DBOS.step_status``). State
in process memory would not do: the next attempt may run in another worker process.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from celery_durable import DBOS

# Orders whose id starts with this never get through to the payment provider.
UNREACHABLE_PREFIX = "unreachable-"


def current_attempt() -> int:
    """The running step's attempt, 0-based (0 outside a step)."""
    status = DBOS.step_status
    if status is None or status.current_attempt is None:
        return 0
    return status.current_attempt


def charge(order_id: str) -> dict[str, str]:
    """A payment provider: unreachable for ``unreachable-*`` orders, fine otherwise."""
    if order_id.startswith(UNREACHABLE_PREFIX):
        raise ConnectionError(f"payment provider unreachable while charging {order_id}")
    return {"order_id": order_id, "payment_id": f"pay-{order_id}", "status": "charged"}


def flaky_get(url: str) -> dict[str, Any]:
    """An HTTP API that answers 503 to the first ``?fail_times=N`` attempts (default 2)."""
    query = parse_qs(urlsplit(url).query)
    fail_times = int(query.get("fail_times", ["2"])[0])
    attempt = current_attempt()
    if attempt < fail_times:
        raise ConnectionError(f"GET {url}: 503 Service Unavailable")
    return {"url": url, "status": 200, "attempts": attempt + 1}


def reserve(order_id: str, items: list[str]) -> list[str]:
    """A warehouse: every item is in stock."""
    return [f"{order_id}:{item}" for item in items]


def send(message: str) -> dict[str, bool]:
    """A notification service: accepts everything."""
    return {"sent": bool(message)}


def payment_page(order_id: str) -> str:
    """A payment provider's hosted page, where the buyer pays for ``order_id``."""
    return f"https://pay.example.com/session/ps-{order_id}"


def order_page(order_id: str) -> str:
    """The shop's page for a confirmed order."""
    return f"https://shop.example.com/orders/{order_id}"


def count_rows(report_id: str, section: str) -> int:
    """A data warehouse query that takes a moment: 100 rows per letter of the section."""
    time.sleep(0.3)
    return 100 * len(section)
