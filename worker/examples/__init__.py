"""The examples served by the stack (``CELERY_DURABLE_IMPORTS=worker.examples``).

The specification's:

- :mod:`worker.examples.payment`: payment with compensation (``resilient_workflow``);
- :mod:`worker.examples.flaky_api`: a flaky API retried with backoff
  (``fetch_with_backoff``, step ``robust_api_call``);
- :mod:`worker.examples.fulfilment`: order fulfilment in focused steps (``fulfil_order``).

Talking to running workflows:

- :mod:`worker.examples.checkout`: a checkout that publishes its payment URL as an event
  and waits for the payment provider's webhook as a message (``checkout``);
- :mod:`worker.examples.progress`: a report that streams its progress (``build_report``).

Time, identity and versions:

- :mod:`worker.examples.renewals`: a nightly schedule that starts subscription
  renewals as a user with a role and a timeout; the renewal checks the role and
  branches on a patch (``nightly_renewals``, ``renew_subscription``).

Your existing Celery tasks:

- :mod:`worker.examples.server_report`: a report over many servers from an existing task
  of another app (``worker/ops_tasks.py``), every outcome gathered (``server_report``);
- :mod:`worker.examples.canvas_orders`: a durable workflow as one link of a Celery chain,
  before that app's existing task (``ship_order``, ``shipping_pipeline``).

Workflow and step names are the functions' ``__qualname__``, shared by every module a
worker imports: keep function names unique across these modules.
"""

from worker.examples import (
    canvas_orders,
    checkout,
    flaky_api,
    fulfilment,
    payment,
    progress,
    renewals,
    server_report,
)

__all__ = [
    "canvas_orders",
    "checkout",
    "flaky_api",
    "fulfilment",
    "payment",
    "progress",
    "renewals",
    "server_report",
]
