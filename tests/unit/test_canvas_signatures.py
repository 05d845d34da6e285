"""A workflow's Celery signature (``service/signatures.py``): ``s``, ``si`` and
``signature`` name its task, as a Celery task's do."""

from __future__ import annotations

from typing import Any

from celery import Celery, chain

from celery_durable.engine.registry import Registry
from celery_durable.error import DBOSException
from celery_durable.service.decorators import declare_required_roles, declare_workflow


def unconfigured() -> Any:
    raise DBOSException("DBOS is not configured")


def test_a_workflow_has_its_task_signatures() -> None:
    @declare_workflow(Registry(), unconfigured, "orders.process", None)
    def process_order(order_id: str, express: bool = False) -> str:
        return order_id

    partial: Any = process_order.s("o-1", express=True)
    assert (partial.task, partial.args, partial.kwargs) == (
        "orders.process",
        ("o-1",),
        {"express": True},
    )
    assert not partial.immutable
    immutable: Any = process_order.si("o-2")
    assert immutable.immutable and immutable.args == ("o-2",)
    routed: Any = process_order.signature(("o-3",), queue="orders")
    assert routed.options == {"queue": "orders"}
    app = Celery("signatures", set_as_current=False)
    linked = chain(app.signature("billing.charge"), process_order.s())
    assert [task.task for task in linked.tasks] == ["billing.charge", "orders.process"]


def test_required_roles_keep_the_signatures() -> None:
    registry = Registry()

    @declare_required_roles(registry, ["admin"])
    @declare_workflow(registry, unconfigured, "orders.audit", None)
    def audit(order_id: str) -> str:
        return order_id

    assert audit.s("o-1").task == "orders.audit"
