"""DBOS 3.4's constructors of the errors a porting program raises or inspects."""

from __future__ import annotations

import pickle

from celery_durable.error import DBOSNonExistentWorkflowError, DBOSWorkflowFunctionNotFoundError


def test_non_existent_workflow_takes_dbos_destination_and_id() -> None:
    error = DBOSNonExistentWorkflowError("target", "wf-1")
    assert error.message == "Non-existent target workflow ID: wf-1"
    assert (error.destination, error.destination_id, error.workflow_id) == (
        "target",
        "wf-1",
        "wf-1",
    )
    named = DBOSNonExistentWorkflowError(destination="`send` destination", destination_id="x")
    assert named.message == "Non-existent `send` destination workflow ID: x"
    again = pickle.loads(pickle.dumps(error))
    assert (again.destination, again.destination_id) == ("target", "wf-1")


def test_non_existent_workflow_keeps_the_one_argument_form() -> None:
    error = DBOSNonExistentWorkflowError("wf-2")
    assert error.message == "Workflow wf-2 does not exist"
    assert (error.destination, error.workflow_id) == (None, "wf-2")
    assert pickle.loads(pickle.dumps(error)).message == "Workflow wf-2 does not exist"


def test_workflow_function_not_found_takes_dbos_parameters() -> None:
    error = DBOSWorkflowFunctionNotFoundError(workflow_id="orders.ship", message="not here")
    assert (error.workflow_id, error.workflow_name, error.detail) == (
        "orders.ship",
        "orders.ship",
        "not here",
    )
    assert error.message == "not here"
    plain = pickle.loads(pickle.dumps(DBOSWorkflowFunctionNotFoundError("orders.ship")))
    assert plain.message == "Workflow function orders.ship is not registered"


def test_a_record_in_the_order_celery_durable_records_reads_as_dbos_order() -> None:
    """Checkpoints name the id first (as every release has); DBOS 3.4's constructor
    names the role first: both build the same error, and it records as before."""
    dbos_order = DBOSNonExistentWorkflowError("`send` destination", "wf-1")
    recorded = DBOSNonExistentWorkflowError("wf-1", "`send` destination")
    assert (
        dbos_order.message
        == recorded.message
        == ("Non-existent `send` destination workflow ID: wf-1")
    )
    assert dbos_order.__reduce__()[1] == ("wf-1", "`send` destination")
    assert pickle.loads(pickle.dumps(dbos_order)).destination_id == "wf-1"
