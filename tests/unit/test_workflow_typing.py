"""What type checkers see of a ``@DBOS.workflow()`` function (``WorkflowFunction``).

mypy checks this module (``[tool.mypy]`` covers ``tests.unit``, strict, with unused
``type: ignore`` comments reported): each ignore below marks a call mypy must refuse,
each line without one a use it must accept.
"""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature

from celery_durable import DBOS
from celery_durable.engine.registry import Registry
from celery_durable.error import DBOSException
from celery_durable.service.decorators import declare_required_roles, declare_workflow
from celery_durable.service.handles import WorkflowHandle


def unconfigured() -> Any:
    raise DBOSException("DBOS is not configured")


def test_a_workflow_is_typed_as_its_function_with_the_signature_methods() -> None:
    registry = Registry()

    @declare_required_roles(registry, ["admin"])
    @declare_workflow(registry, unconfigured, "typing.process", None)
    def process(order_id: str, quantity: int = 1) -> dict[str, int]:
        return {order_id: quantity}

    partial: Signature[Any] = process.s("o-1", quantity=2)
    immutable: Signature[Any] = process.si("o-1")
    routed: Signature[Any] = process.signature(("o-1",), {"quantity": 3}, queue="orders")
    assert [partial.task, immutable.task, routed.task] == ["typing.process"] * 3


def _checked_by_mypy_only() -> None:
    """Never called: what mypy accepts and refuses of calls and starts."""

    @DBOS.workflow(name="typing.ship")
    def ship(order_id: str, express: bool = False) -> str:
        return order_id

    @DBOS.workflow(name="typing.ship_async")
    async def ship_async(order_id: str) -> int:
        return len(order_id)

    class Orders:
        @DBOS.workflow(name="typing.Orders.close")
        def close(self, order_id: str) -> bool:
            return bool(order_id)

    label: str = ship("o-1", express=True)
    ship(1)  # type: ignore[arg-type]
    handle: WorkflowHandle[str] = DBOS.start_workflow(ship, "o-1")
    DBOS.start_workflow(ship, "o-1", express="yes")  # type: ignore[arg-type]
    async_handle: WorkflowHandle[int] = DBOS.start_workflow(ship_async, "o-1")
    closed: bool = Orders().close("o-1")
    signature: Signature[Any] = ship.s("o-1") | ship_async.si("o-2")
    ship.t("o-1")  # type: ignore[attr-defined]
    print(label, handle, async_handle, closed, signature)
