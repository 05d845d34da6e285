"""DBOS 3.4's conflict policies on the application side:
``SetWorkflowID(wfid, workflow_id_reuse_policy="reject")`` and
``SetEnqueueOptions(duplication_policy="return-existing")``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from celery_durable import DBOS, Queue, SetEnqueueOptions, SetWorkflowID
from celery_durable.error import (
    DBOSConflictingWorkflowError,
    DBOSException,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowIDInUseError,
)

# No worker consumes it: what is enqueued there stays ENQUEUED (holding its dedup id).
idle_queue = Queue("start-policies-idle")


@DBOS.workflow()
def policy_echo(value: str) -> str:
    return value


@DBOS.workflow()
def starts_a_child_with_reject(child_id: str) -> None:
    with SetWorkflowID(child_id, workflow_id_reuse_policy="reject"):
        DBOS.start_workflow(policy_echo, "child")


def new_id() -> str:
    return f"policy-{uuid.uuid4()}"


def test_set_workflow_id_takes_dbos_parameter_names(dbos: type[DBOS], worker: Any) -> None:
    workflow_id = new_id()
    with SetWorkflowID(wfid=workflow_id):
        handle = DBOS.start_workflow(policy_echo, "a")
    assert handle.workflow_id == workflow_id
    assert handle.get_result() == "a"
    # The default ("return-existing", or None) returns the first workflow's handle.
    with SetWorkflowID(workflow_id, workflow_id_reuse_policy="return-existing"):
        assert DBOS.start_workflow(policy_echo, "b").get_result() == "a"


@DBOS.workflow()
def other_echo(value: str) -> str:
    return value


def test_an_id_in_use_by_another_function_is_refused_with_dbos_text(
    dbos: type[DBOS], worker: Any
) -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert DBOS.start_workflow(policy_echo, "first").get_result() == "first"
    for start in (lambda: DBOS.start_workflow(other_echo, "x"), lambda: other_echo("x")):
        with SetWorkflowID(workflow_id), pytest.raises(DBOSConflictingWorkflowError) as raised:
            start()
        assert str(raised.value) == (
            f"DBOS Error 9: Conflicting workflow invocation with the same ID ({workflow_id}): "
            "Workflow already exists with a different function name: policy_echo, "
            "but the provided function name is: other_echo"
        )


def test_reject_refuses_an_id_in_use(dbos: type[DBOS], worker: Any) -> None:
    workflow_id = new_id()
    with SetWorkflowID(workflow_id, workflow_id_reuse_policy="reject"):
        assert DBOS.start_workflow(policy_echo, "first").get_result() == "first"
    with (
        SetWorkflowID(workflow_id, workflow_id_reuse_policy="reject"),
        pytest.raises(DBOSWorkflowIDInUseError) as raised,
    ):
        DBOS.start_workflow(policy_echo, "second")
    assert raised.value.workflow_id == workflow_id
    with (
        SetWorkflowID(workflow_id, workflow_id_reuse_policy="reject"),
        pytest.raises(DBOSWorkflowIDInUseError),
    ):
        policy_echo("direct call")
    with (
        SetWorkflowID(workflow_id, workflow_id_reuse_policy="reject"),
        pytest.raises(DBOSWorkflowIDInUseError),
    ):
        idle_queue.enqueue(policy_echo, "enqueued")
    # The policy names one workflow: the next start outside the block is unaffected.
    assert DBOS.start_workflow(policy_echo, "fresh").get_result() == "fresh"


def test_reject_is_refused_for_a_child_and_bad_policies_are_refused(
    dbos: type[DBOS],
) -> None:
    with pytest.raises(DBOSException, match="outside workflow code"):
        starts_a_child_with_reject(new_id())
    with pytest.raises(DBOSException, match="workflow_id_reuse_policy"):
        SetWorkflowID(new_id(), workflow_id_reuse_policy="sometimes")  # type: ignore[arg-type]
    options = SetEnqueueOptions(duplication_policy="maybe")  # type: ignore[arg-type]
    with pytest.raises(DBOSException, match="duplication_policy"), options:
        pass


def test_return_existing_returns_the_deduplication_holder(dbos: type[DBOS]) -> None:
    dedup = f"dedup-{uuid.uuid4()}"
    with SetEnqueueOptions(deduplication_id=dedup):
        holder = idle_queue.enqueue(policy_echo, "holder")
    with SetEnqueueOptions(deduplication_id=dedup), pytest.raises(DBOSQueueDeduplicatedError):
        idle_queue.enqueue(policy_echo, "rejected")
    with SetEnqueueOptions(deduplication_id=dedup, duplication_policy="return-existing"):
        again = idle_queue.enqueue(policy_echo, "returned")
    assert again.workflow_id == holder.workflow_id
    with (
        SetEnqueueOptions(duplication_policy="return-existing"),
        pytest.raises(DBOSException, match="requires a deduplication_id"),
    ):
        idle_queue.enqueue(policy_echo, "no dedup id")
    with (
        SetEnqueueOptions(deduplication_id=dedup, duplication_policy="return-existing"),
        pytest.raises(DBOSException, match="requires a queue"),
    ):
        policy_echo("direct")
    # A start without a queue (its row would be ENQUEUED too, until a worker claims it)
    # is refused before anything is written, as DBOS refuses it.
    started_id = f"return-existing-start-{uuid.uuid4()}"
    with (
        SetEnqueueOptions(duplication_policy="return-existing"),
        SetWorkflowID(started_id),
        pytest.raises(DBOSException, match="requires a queue"),
    ):
        DBOS.start_workflow(policy_echo, "started")
    assert DBOS.get_workflow_status(started_id) is None
    DBOS.cancel_workflow(holder.workflow_id)


@DBOS.workflow()
def enqueues_under_a_taken_key(dedup: str) -> str:
    try:
        with SetEnqueueOptions(deduplication_id=dedup):
            idle_queue.enqueue(policy_echo, "refused child")
    except DBOSQueueDeduplicatedError:
        return "refused"
    return "enqueued"


def test_a_refused_enqueue_in_workflow_code_is_checkpointed_and_replayed(
    dbos: type[DBOS], worker: Any
) -> None:
    dedup = f"dedup-{uuid.uuid4()}"
    with SetEnqueueOptions(deduplication_id=dedup):
        holder = idle_queue.enqueue(policy_echo, "holder")
    workflow_id = new_id()
    with SetWorkflowID(workflow_id):
        assert enqueues_under_a_taken_key(dedup) == "refused"
    (step,) = DBOS.list_workflow_steps(workflow_id)
    assert isinstance(step["error"], DBOSQueueDeduplicatedError)
    assert step["child_workflow_id"] is None
    # With the key free, a replay of the checkpoint still raises, not enqueues.
    DBOS.cancel_workflow(holder.workflow_id)
    forked = DBOS.fork_workflow(workflow_id, 2)
    assert forked.get_result(timeout=30) == "refused"
    assert len(DBOS.list_workflow_steps(forked.workflow_id)) == 1
