"""A step enqueued as a workflow (DBOS's ``<temp>.<step name>``) survives a SIGKILLed
worker: a fresh ``celery worker`` process (tests.integration.fault_app, which only
imports the step) finishes it by its name."""

from __future__ import annotations

from collections import Counter

from tests.integration.test_faults import Faults, fault_database, redis_faults

__all__ = ["fault_database", "redis_faults"]  # fixtures used below


def test_a_step_enqueued_as_a_workflow_is_recovered_after_its_worker_is_killed(
    redis_faults: Faults,
) -> None:
    faults = redis_faults
    faults.add_trigger("after-effect:1", "kill-worker")
    first = faults.start_worker()
    # Enqueued by name from a client that does not import the step, as DBOS's client can.
    handle = faults.enqueue("<temp>.side_effect", 1)
    first.process.wait(timeout=60)  # the step killed its own worker before its checkpoint
    faults.start_worker()
    assert handle.get_result(timeout=90) == 1
    status = handle.get_status()
    assert (status.name, status.status) == ("<temp>.side_effect", "SUCCESS")
    [step] = faults.client.list_workflow_steps(handle.workflow_id)
    assert (step["function_id"], step["function_name"], step["output"]) == (1, "side_effect", 1)
    # The step the kill interrupted ran again; nothing else ran.
    assert faults.effects(handle.workflow_id) == Counter({"1": 2})
