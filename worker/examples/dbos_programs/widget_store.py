"""DBOS's widget store, in our words: a shop that sells one widget.

A DBOS Transact program ported by changing its imports only (``from dbos import ...``
became ``from celery_durable import ...``). A checkout is a workflow: it creates the
order and reserves a widget in database transactions (a ``SQLAlchemyDatasource``),
publishes the payment's id as an event, and waits for the payment provider's
confirmation as a message. Paid, the order is dispatched by a workflow on a queue that
reports its progress in the database; unpaid (or not paid in time), the reservation is
undone and the order cancelled. Either way the checkout publishes the order's id.

The web app's endpoints are the plain functions below (``start_checkout``,
``confirm_payment``, ``order``, ...); ``python widget_store.py`` plays one purchase.
Its databases: ``WIDGET_STORE_SYSTEM_DATABASE_URL`` (DBOS's) and
``WIDGET_STORE_DATABASE_URL`` (the shop's, which must exist); its broker:
``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import text

from celery_durable import DBOS, DBOSConfig, SetWorkflowID, SQLAlchemyDatasource

config: DBOSConfig = {
    "name": "widget-store",
    "system_database_url": os.environ["WIDGET_STORE_SYSTEM_DATABASE_URL"],
}
DBOS(config=config)
shop = SQLAlchemyDatasource.create(os.environ["WIDGET_STORE_DATABASE_URL"])

PAYMENT_ID = "payment_id"  # event: where the buyer pays
PAYMENT_STATUS = "payment_status"  # message topic: the provider's confirmation
ORDER_ID = "order_id"  # event: the order the checkout made
DISPATCH_QUEUE = "widget_dispatch"
PAYMENT_WINDOW_SECONDS = float(os.environ.get("WIDGET_STORE_PAYMENT_WINDOW", "60"))
DISPATCH_STEPS = 3

PENDING, PAID, DISPATCHED, CANCELLED = "pending", "paid", "dispatched", "cancelled"


class OutOfStock(Exception):
    """No widget left to reserve."""


# -- the shop's database -----------------------------------------------------------


@shop.transaction()
def set_up_shop(stock: int) -> None:
    """Creates the shop's tables (once) and stocks ``stock`` widgets."""
    session = shop.sql_session()
    session.execute(
        text("CREATE TABLE IF NOT EXISTS widgets (name text PRIMARY KEY, inventory integer)")
    )
    session.execute(
        text(
            "CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, status text,"
            " progress_remaining integer)"
        )
    )
    session.execute(
        text(
            "INSERT INTO widgets VALUES ('widget', :n)"
            " ON CONFLICT (name) DO UPDATE SET inventory = :n"
        ),
        {"n": stock},
    )


@shop.transaction()
def create_order() -> int:
    row = shop.sql_session().execute(
        text("INSERT INTO orders (status, progress_remaining) VALUES (:s, :p) RETURNING id"),
        {"s": PENDING, "p": DISPATCH_STEPS},
    )
    return int(row.scalar_one())


@shop.transaction()
def reserve_widget() -> None:
    reserved = shop.sql_session().execute(
        text("UPDATE widgets SET inventory = inventory - 1 WHERE name = 'widget' AND inventory > 0")
    )
    if reserved.rowcount == 0:  # type: ignore[attr-defined]
        raise OutOfStock("no widget left")


@shop.transaction()
def undo_reservation() -> None:
    shop.sql_session().execute(
        text("UPDATE widgets SET inventory = inventory + 1 WHERE name = 'widget'")
    )


@shop.transaction()
def set_order_status(order_id: int, status: str) -> None:
    shop.sql_session().execute(
        text("UPDATE orders SET status = :s WHERE id = :id"), {"s": status, "id": order_id}
    )


@shop.transaction()
def dispatch_one_step(order_id: int) -> int:
    row = shop.sql_session().execute(
        text(
            "UPDATE orders SET progress_remaining = progress_remaining - 1,"
            " status = CASE WHEN progress_remaining = 1 THEN :done ELSE status END"
            " WHERE id = :id RETURNING progress_remaining"
        ),
        {"id": order_id, "done": DISPATCHED},
    )
    return int(row.scalar_one())


# -- the workflows -----------------------------------------------------------------


@DBOS.workflow()
def checkout() -> int | None:
    """One purchase: order, reservation, payment, then dispatch or cancellation."""
    order_id = create_order()
    try:
        reserve_widget()
    except OutOfStock:
        DBOS.set_event(PAYMENT_ID, None)  # nothing to pay for
        set_order_status(order_id, CANCELLED)
        DBOS.set_event(ORDER_ID, order_id)
        return None
    DBOS.set_event(PAYMENT_ID, DBOS.workflow_id)  # the provider confirms this checkout
    payment = DBOS.recv(PAYMENT_STATUS, timeout_seconds=PAYMENT_WINDOW_SECONDS)
    if payment == "paid":
        set_order_status(order_id, PAID)
        with SetWorkflowID(dispatch_id(order_id)):
            DBOS.enqueue_workflow(DISPATCH_QUEUE, dispatch_order, order_id)
    else:
        undo_reservation()
        set_order_status(order_id, CANCELLED)
    DBOS.set_event(ORDER_ID, order_id)
    return order_id


def dispatch_id(order_id: int) -> str:
    """The id of an order's dispatch workflow."""
    return f"dispatch-{order_id}"


@DBOS.workflow()
def dispatch_order(order_id: int) -> None:
    """Packs and ships an order in a few durable steps (its progress is in the table)."""
    while dispatch_one_step(order_id) > 0:
        DBOS.sleep(0.2)


# -- the web app's endpoints ---------------------------------------------------------


def open_shop(stock: int) -> None:
    """At the app's start: the shop's tables, DBOS, the dispatch queue."""
    set_up_shop(stock)
    DBOS.launch()
    DBOS.register_queue(DISPATCH_QUEUE, concurrency=2)


def start_checkout(idempotency_key: str) -> str | None:
    """POST /checkout/{key}: the payment's id (None when sold out). Retried with the
    same key, it is the same checkout."""
    with SetWorkflowID(idempotency_key):
        handle = DBOS.start_workflow(checkout)
    payment_id: str | None = DBOS.get_event(handle.workflow_id, PAYMENT_ID, timeout_seconds=30)
    return payment_id


def confirm_payment(payment_id: str, status: str) -> int | None:
    """POST /payment_webhook/{payment_id}/{status}: the order's id."""
    DBOS.send(payment_id, status, PAYMENT_STATUS)
    order_id: int | None = DBOS.get_event(payment_id, ORDER_ID, timeout_seconds=30)
    return order_id


@shop.transaction()
def order(order_id: int) -> dict[str, Any]:
    """GET /order/{order_id} (a transaction outside any workflow: not recorded)."""
    row = (
        shop.sql_session()
        .execute(
            text("SELECT status, progress_remaining FROM orders WHERE id = :id"),
            {"id": order_id},
        )
        .one()
    )
    return {"order_id": order_id, "status": row[0], "progress_remaining": row[1]}


@shop.transaction()
def inventory() -> int:
    """GET /product."""
    session = shop.sql_session()
    return int(session.execute(text("SELECT inventory FROM widgets")).scalar_one())


if __name__ == "__main__":
    import uuid

    open_shop(stock=5)
    payment_id = start_checkout(str(uuid.uuid4()))
    assert payment_id is not None
    order_id = confirm_payment(payment_id, "paid")
    assert order_id is not None
    DBOS.retrieve_workflow(dispatch_id(order_id)).get_result()
    print(order(order_id), "widgets left:", inventory())
    DBOS.destroy(workflow_completion_timeout_sec=10)
