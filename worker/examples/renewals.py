"""Time, identity and versions: subscription renewals.

- ``nightly_renewals`` runs every night at 03:00 UTC (``@DBOS.scheduled``, DBOS 2.x's
  decorator; each tick runs exactly once however many workers run). It starts one
  renewal per due subscription as the ``scheduler`` user with the ``billing`` role, each
  with a 10-minute timeout (``DBOSContextSetAuth``, ``SetWorkflowTimeout``).
- ``renew_subscription`` may only be started by a caller with the ``billing`` role
  (``@DBOS.required_roles``); it records who renewed it. The receipt step was added in a
  later release: ``DBOS.patch`` sends receipts for renewals that start after that
  deploy, while renewals already past that point when it happened replay without one.

``worker/producer.py`` enqueues a renewal with ``DBOSClient`` as the ``ops`` user with
the ``billing`` role and a timeout.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery_durable import DBOS, DBOSContextSetAuth, SetWorkflowTimeout

RENEWAL_TIMEOUT_SECONDS = 600.0


@DBOS.step()
def charge_renewal(customer_id: str) -> str:
    return f"renewal-{customer_id}"


@DBOS.step()
def send_receipt(customer_id: str, charge_id: str) -> str:
    DBOS.logger.info(f"Receipt for {charge_id} sent to {customer_id}")
    return f"receipt-{charge_id}"


@DBOS.required_roles(["billing"])
@DBOS.workflow()
def renew_subscription(customer_id: str) -> dict[str, Any]:
    charge_id = charge_renewal(customer_id)
    receipt = send_receipt(customer_id, charge_id) if DBOS.patch("renewal-receipts") else None
    return {"charge": charge_id, "receipt": receipt, "renewed_by": DBOS.authenticated_user}


def due_subscriptions(day: dt.date) -> list[str]:
    """A stand-in for the billing database's query."""
    return [f"customer-{day.isoformat()}-{n}" for n in range(3)]


@DBOS.scheduled("0 3 * * *")
@DBOS.workflow()
def nightly_renewals(scheduled_time: dt.datetime, actual_time: dt.datetime) -> list[str]:
    started = []
    with (
        DBOSContextSetAuth("scheduler", ["billing"]),
        SetWorkflowTimeout(RENEWAL_TIMEOUT_SECONDS),
    ):
        for customer_id in due_subscriptions(scheduled_time.date()):
            started.append(DBOS.start_workflow(renew_subscription, customer_id).workflow_id)
    return started
