"""A class-based app, in our words (DBOS's classes and configured instances).

A DBOS Transact program ported by changing its imports only. A ``Warehouse`` is a
``DBOSConfiguredInstance``: each warehouse is an instance with its own configuration
(its name and the supplier it orders from), and its methods are workflows and steps
that run with that instance, also on another worker and after a crash (the instance is
found again by its ``config_name``). ``Warehouse.restock`` checks every item's level
and orders what is short from the warehouse's supplier; a class method and a static
method are workflows too. ``Auditor`` is a plain ``@DBOS.dbos_class`` with a workflow
that audits any warehouse by name.

``python warehouses.py`` restocks both warehouses. Its database:
``WAREHOUSES_DATABASE_URL``; its broker: ``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import os

from celery_durable import DBOS, DBOSConfig, DBOSConfiguredInstance

config: DBOSConfig = {
    "name": "warehouses",
    "system_database_url": os.environ["WAREHOUSES_DATABASE_URL"],
}
DBOS(config=config)

# Each warehouse's shelves: a stand-in for its inventory system.
SHELVES: dict[str, dict[str, int]] = {
    "north": {"bolts": 3, "nuts": 40},
    "south": {"bolts": 50, "nuts": 1},
}


@DBOS.dbos_class()
class Warehouse(DBOSConfiguredInstance):
    """One warehouse: what is short is ordered from its supplier, up to ``target``."""

    def __init__(self, name: str, supplier: str, target: int) -> None:
        self.supplier = supplier
        self.target = target
        super().__init__(config_name=name)

    @DBOS.workflow()
    def restock(self) -> list[str]:
        orders = []
        for item, level in self.levels().items():
            if level < self.target:
                orders.append(self.order(item, self.target - level))
        return orders

    @DBOS.step()
    def levels(self) -> dict[str, int]:
        return dict(SHELVES[self.config_name])

    @DBOS.step()
    def order(self, item: str, quantity: int) -> str:
        SHELVES[self.config_name][item] += quantity
        return f"{self.config_name}: {quantity} {item} from {self.supplier}"

    @classmethod
    @DBOS.workflow()
    def names(cls) -> list[str]:
        return sorted(SHELVES)

    @staticmethod
    @DBOS.workflow()
    def total(item: str) -> int:
        return sum(shelf[item] for shelf in SHELVES.values())


@DBOS.dbos_class()
class Auditor:
    """No configuration: its workflows are class or static methods."""

    @staticmethod
    @DBOS.workflow()
    def audit(name: str) -> dict[str, int]:
        return WAREHOUSES[name].levels()


# Created as the module loads, before launch: every process that serves the workflows
# makes the same instances, which is how a recovered workflow finds its own.
WAREHOUSES = {
    "north": Warehouse("north", supplier="acme", target=10),
    "south": Warehouse("south", supplier="globex", target=5),
}


def restock_everywhere() -> dict[str, list[str]]:
    """Each warehouse's restock, started in the background, then their results."""
    handles = {name: DBOS.start_workflow(w.restock) for name, w in WAREHOUSES.items()}
    return {name: handle.get_result() for name, handle in handles.items()}


if __name__ == "__main__":
    DBOS.launch()
    print(restock_everywhere())
    print(Warehouse.names(), Warehouse.total("bolts"), Auditor.audit("south"))
    DBOS.destroy(workflow_completion_timeout_sec=10)
