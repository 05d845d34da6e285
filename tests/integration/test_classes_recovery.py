"""A workflow of an instance method, and a datasource's transaction, survive a SIGKILLed
worker: a fresh ``celery worker`` process (tests.integration.fault_app, which imports
tests.integration.fault_classes) finishes them, finding the configured instance by
``(class_name, config_name)`` and running no committed transaction twice."""

from __future__ import annotations

from collections import Counter

from tests.integration.test_faults import Faults, fault_database, redis_faults

__all__ = ["fault_database", "redis_faults"]  # fixtures used below


def test_an_instance_methods_workflow_is_recovered_with_its_instance(
    redis_faults: Faults,
) -> None:
    faults = redis_faults
    faults.add_trigger("ledger-entry:1", "kill-worker")
    first = faults.start_worker()
    handle = faults.enqueue("settles_ledger", 3)
    first.process.wait(timeout=60)  # the step killed its own worker
    faults.start_worker()
    # The instance's rate (3) is what the recovered workflow computed with.
    assert handle.get_result(timeout=90) == [0, 3, 6]
    (child,) = faults.client.list_workflows(name="Ledger.settle")
    assert (child.class_name, child.config_name) == ("Ledger", "main")
    assert child.parent_workflow_id == handle.workflow_id
    assert child.input == {"args": [3], "kwargs": {}}
    # Only the step the kill interrupted ran twice.
    assert faults.effects(child.workflow_id) == Counter({"entry:0": 1, "entry:1": 2, "entry:2": 1})


def test_sigkill_right_after_a_datasource_transaction_commits(redis_faults: Faults) -> None:
    faults = redis_faults
    faults.add_trigger("after-commit", "kill-worker")
    first = faults.start_worker()
    handle = faults.enqueue("pays_through_datasource", "p-ds")
    first.process.wait(timeout=60)  # killed between the commit and the checkpoint
    faults.start_worker()
    assert handle.get_result(timeout=90) == "p-ds"
    assert faults.db.execute("SELECT id FROM fault_payments").fetchall() == [("p-ds",)]
    assert faults.effects(handle.workflow_id) == Counter({"datasource_payment": 1, "1": 1})
