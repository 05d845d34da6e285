"""Workflows of the class and datasource fault tests
(tests/integration/test_classes_recovery.py), registered by tests.integration.fault_app.

The configured instance is created when the module is imported, as DBOS requires: every
worker process that imports the app has it, so whichever worker recovers a workflow of
one of its methods finds it by ``(class_name, config_name)``.
"""

from __future__ import annotations

from sqlalchemy import text

from celery_durable import DBOS, DBOSConfiguredInstance, SQLAlchemyDatasource
from tests.integration.fault_app import DATABASE_URL, effect, side_effect, trigger


@DBOS.dbos_class()
class Ledger(DBOSConfiguredInstance):
    def __init__(self, config_name: str, rate: int) -> None:
        self.rate = rate
        super().__init__(config_name)

    @DBOS.step()
    def entry(self, index: int) -> int:
        effect(DBOS.workflow_id, f"entry:{index}")
        trigger(f"ledger-entry:{index}")
        return index * self.rate

    @DBOS.workflow()
    def settle(self, count: int) -> list[int]:
        return [self.entry(index) for index in range(count)]


ledger = Ledger("main", rate=3)


@DBOS.workflow()
def settles_ledger(count: int) -> list[int]:
    """Starts the instance's workflow as a child (a DBOSClient cannot name an instance)."""
    return ledger.settle(count)


# Constructed, not create()d: importing the app connects to nothing (a test may start a
# worker while PostgreSQL is down). This is the application database, whose table the
# worker's own migration creates.
payments = SQLAlchemyDatasource(database_url=DATABASE_URL)


@payments.transaction()
def record_datasource_payment(payment_id: str) -> str:
    effect(DBOS.workflow_id, "datasource_payment")
    payments.sql_session().execute(
        text("INSERT INTO fault_payments (id) VALUES (:id)"), {"id": payment_id}
    )
    return payment_id


@DBOS.workflow()
def pays_through_datasource(payment_id: str) -> str:
    record_datasource_payment(payment_id)
    side_effect(1)
    return payment_id
