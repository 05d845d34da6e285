"""A durable workflow inside an existing Celery chain (docs/canvas.md).

An existing pipeline ships each order, then has the ops team's task
``ops.notify_customer`` (``worker/ops_tasks.py``, which imports nothing of
celery_durable) tell the customer, on its own workers and queue. The shipping is now a
durable workflow: its steps are checkpointed, its wait frees the worker, and a worker
that dies mid-way loses nothing. In the chain it is one link like any task: it receives
the order id and passes its result to ``ops.notify_customer`` once, when it ends.

No result backend is needed: a chain passes results in its messages. Start it with
``shipping_pipeline("o-1").apply_async()`` from any process that has the Celery app.
"""

from __future__ import annotations

from typing import Any

from celery import chain, signature

from celery_durable import DBOS
from worker.examples import fakes

OPS_QUEUE = "ops"


@DBOS.step(max_attempts=3, interval_seconds=0.5)
def reserve_stock(order_id: str) -> list[str]:
    return fakes.reserve(order_id, ["parcel"])


@DBOS.step()
def print_label(order_id: str) -> str:
    return f"label-{order_id}"


@DBOS.workflow()
def ship_order(order_id: str) -> dict[str, Any]:
    reserved = reserve_stock(order_id)
    DBOS.sleep(0.5)  # the courier's pickup window: the worker is free meanwhile
    return {"order_id": order_id, "items": reserved, "label": print_label(order_id)}


def shipping_pipeline(order_id: str) -> Any:
    """The chain: the durable shipping, then the ops team's existing notification."""
    return chain(
        ship_order.s(order_id),
        signature("ops.notify_customer", queue=OPS_QUEUE),
    )
