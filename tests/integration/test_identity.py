"""The authenticated user (DBOS's DBOSContextSetAuth and @DBOS.required_roles).

A workflow started, enqueued or called inside ``DBOSContextSetAuth(user, roles)``
records them; its code, its steps and its children read them, on the session's
in-process worker as in a direct call, and after a subprocess worker is SIGKILLed and
replaced. ``@DBOS.required_roles`` refuses callers without one of the roles.
"""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections import Counter
from typing import Any

import pytest

from celery_durable import DBOS, DBOSClient, DBOSContextSetAuth, Queue, SetWorkflowID
from celery_durable.core.serialization import make_serializer
from celery_durable.error import DBOSErrorCode, DBOSException, DBOSNotAuthorizedError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE
from tests.integration.test_faults import Faults, fault_database, redis_faults

__all__ = ["fault_database", "redis_faults"]  # fixtures used below

pytestmark = pytest.mark.usefixtures("worker")

ROLES = ["user", "admin"]
QUEUE = Queue(TEST_QUEUE)
calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def new_id() -> str:
    return f"identity-{uuid.uuid4()}"


def whoami() -> dict[str, Any]:
    context = DBOS.get_context()
    return {
        "user": DBOS.authenticated_user,
        "roles": DBOS.authenticated_roles,
        "assumed": DBOS.assumed_role,
        "context_user": None if context is None else context.authenticated_user,
    }


def identity(user: str | None, roles: list[str] | None, assumed: str | None) -> dict[str, Any]:
    return {"user": user, "roles": roles, "assumed": assumed, "context_user": user}


@DBOS.step()
def step_whoami() -> dict[str, Any]:
    return whoami()


@DBOS.workflow()
def child_whoami() -> dict[str, Any]:
    return {"workflow": whoami(), "step": step_whoami()}


@DBOS.workflow()
def parent_whoami() -> dict[str, Any]:
    return {
        "workflow": whoami(),
        "step": step_whoami(),
        "called_child": child_whoami(),
        "started_child": DBOS.start_workflow(child_whoami).get_result(),
    }


@DBOS.required_roles(["admin", "user"])
@DBOS.workflow()
def admin_or_user() -> dict[str, Any]:
    calls["admin_or_user"] += 1
    return {"workflow": whoami(), "child": child_whoami()}


@DBOS.required_roles(["admin"])
@DBOS.workflow()
async def async_admin() -> dict[str, Any]:
    calls["async_admin"] += 1
    return whoami()


@DBOS.required_roles(["admin"])
@DBOS.step()
def admin_step() -> str | None:
    calls["admin_step"] += 1
    return DBOS.assumed_role


@DBOS.workflow()
def calls_admin_step() -> str:
    try:
        return f"ran as {admin_step()}, then {DBOS.assumed_role}"
    except DBOSNotAuthorizedError as error:
        return f"denied: {error.msg}"


def status(workflow_id: str) -> Any:
    found = DBOS.list_workflows(workflow_ids=[workflow_id])
    assert len(found) == 1, workflow_id
    return found[0]


def children_of(workflow_id: str) -> list[Any]:
    return [w for w in DBOS.list_workflows() if w.parent_workflow_id == workflow_id]


def nothing_written(workflow_id: str) -> bool:
    return DBOS._service().runtime.process.store.workflows.get_outcome(workflow_id) is None


def assert_everywhere(result: dict[str, Any], expected: dict[str, Any]) -> None:
    assert result["workflow"] == expected
    assert result["step"] == expected
    assert result["called_child"] == {"workflow": expected, "step": expected}
    assert result["started_child"] == {"workflow": expected, "step": expected}


# -- identity in the workflow, its steps and its children ------------------------------


def test_a_started_workflow_its_steps_and_children_run_as_the_user() -> None:
    workflow_id = new_id()
    with DBOSContextSetAuth("alice", ROLES), SetWorkflowID(workflow_id):
        assert DBOS.authenticated_user == "alice"
        assert DBOS.authenticated_roles == ROLES
        assert DBOS.assumed_role is None
        handle = DBOS.start_workflow(parent_whoami)
    assert DBOS.authenticated_user is None and DBOS.authenticated_roles is None
    assert_everywhere(handle.get_result(timeout=60), identity("alice", ROLES, None))
    recorded = status(workflow_id)
    assert recorded.authenticated_user == "alice"
    assert recorded.authenticated_roles == ROLES
    assert recorded.assumed_role is None
    children = children_of(workflow_id)
    assert len(children) == 2
    for child in children:
        assert (child.authenticated_user, child.authenticated_roles) == ("alice", ROLES)


def test_a_direct_call_runs_as_the_user_and_its_started_child_inherits() -> None:
    workflow_id = new_id()
    with DBOSContextSetAuth("carol", ["reader"]), SetWorkflowID(workflow_id):
        result = parent_whoami()
    assert_everywhere(result, identity("carol", ["reader"], None))
    assert status(workflow_id).authenticated_roles == ["reader"]
    # Without a block, nobody: nothing is recorded.
    anonymous = new_id()
    with SetWorkflowID(anonymous):
        assert_everywhere(parent_whoami(), identity(None, None, None))
    recorded = status(anonymous)
    assert (recorded.authenticated_user, recorded.authenticated_roles) == (None, None)


def test_an_enqueued_workflow_runs_as_the_user() -> None:
    with DBOSContextSetAuth("heidi", ["user"]):
        handle = QUEUE.enqueue(parent_whoami)
    assert_everywhere(handle.get_result(timeout=60), identity("heidi", ["user"], None))
    recorded = status(handle.workflow_id)
    assert (recorded.authenticated_user, recorded.authenticated_roles) == ("heidi", ["user"])


def test_a_user_without_roles() -> None:
    with DBOSContextSetAuth("dave", None):
        handle = DBOS.start_workflow(parent_whoami)
    assert_everywhere(handle.get_result(timeout=60), identity("dave", None, None))
    assert status(handle.workflow_id).authenticated_roles is None


def test_a_fork_keeps_the_identity() -> None:
    with DBOSContextSetAuth("erin", ROLES):
        handle = DBOS.start_workflow(child_whoami)
    handle.get_result(timeout=60)
    forked = DBOS.fork_workflow(handle.workflow_id, 1)
    assert forked.get_result(timeout=60)["step"] == identity("erin", ROLES, None)
    recorded = status(forked.workflow_id)
    assert (recorded.authenticated_user, recorded.authenticated_roles) == ("erin", ROLES)


# -- required roles --------------------------------------------------------------------


def test_required_roles_allow_a_direct_call_which_assumes_the_first_role_granted() -> None:
    workflow_id = new_id()
    with DBOSContextSetAuth("alice", ROLES), SetWorkflowID(workflow_id):
        result = admin_or_user()
        assert DBOS.assumed_role is None  # only while the workflow runs
    assert result["workflow"] == identity("alice", ROLES, "admin")
    # The child inherits the role assumed by its parent.
    assert result["child"] == {
        "workflow": identity("alice", ROLES, "admin"),
        "step": identity("alice", ROLES, "admin"),
    }
    assert status(workflow_id).assumed_role == "admin"
    assert [child.assumed_role for child in children_of(workflow_id)] == ["admin"]
    with DBOSContextSetAuth("ursula", ["user"]):
        assert admin_or_user()["workflow"]["assumed"] == "user"


def test_required_roles_refuse_a_direct_call_before_anything_is_written() -> None:
    workflow_id = new_id()
    with (
        DBOSContextSetAuth("bob", ["reader"]),
        SetWorkflowID(workflow_id),
        pytest.raises(DBOSNotAuthorizedError) as refused,
    ):
        admin_or_user()
    assert refused.value.dbos_error_code == DBOSErrorCode.NotAuthorized == 8
    assert refused.value.msg == (
        f"Function {admin_or_user.__qualname__} has required roles, but user is not "
        "authenticated for any of them"
    )
    assert str(refused.value).startswith("DBOS Error 8: ")
    # No block at all: DBOS's other message.
    with pytest.raises(DBOSNotAuthorizedError, match="without authentication information"):
        admin_or_user()
    assert calls["admin_or_user"] == 0
    assert nothing_written(workflow_id)


def test_a_started_workflow_without_the_role_fails_before_its_code_runs() -> None:
    # As DBOS: the workflow is recorded; its execution refuses it, and it ends in ERROR.
    with DBOSContextSetAuth("bob", ["reader"]):
        handle = DBOS.start_workflow(admin_or_user)
    with pytest.raises(DBOSNotAuthorizedError, match="not authenticated for any of them"):
        handle.get_result(timeout=60)
    assert status(handle.workflow_id).status == "ERROR"
    assert calls["admin_or_user"] == 0
    assert children_of(handle.workflow_id) == []


def test_a_started_workflow_with_the_role_assumes_it_where_it_runs() -> None:
    with DBOSContextSetAuth("alice", ROLES):
        handle = DBOS.start_workflow(admin_or_user)
    result = handle.get_result(timeout=60)
    assert result["workflow"] == identity("alice", ROLES, "admin")
    assert result["child"]["step"] == identity("alice", ROLES, "admin")
    # As DBOS records it: the starter's assumed role (none), not the worker's.
    assert status(handle.workflow_id).assumed_role is None


def test_an_async_workflow_checks_its_roles() -> None:
    with DBOSContextSetAuth("alice", ROLES):
        assert asyncio.run(async_admin()) == identity("alice", ROLES, "admin")
    with DBOSContextSetAuth("bob", ["user"]), pytest.raises(DBOSNotAuthorizedError):
        asyncio.run(async_admin())
    assert calls["async_admin"] == 1


def test_required_roles_on_a_step() -> None:
    allowed = new_id()
    with DBOSContextSetAuth("alice", ["admin"]), SetWorkflowID(allowed):
        assert calls_admin_step() == "ran as admin, then None"
    assert [step["function_name"] for step in DBOS.list_workflow_steps(allowed)] == [
        admin_step.__qualname__
    ]
    refused = new_id()
    with DBOSContextSetAuth("bob", ["reader"]), SetWorkflowID(refused):
        assert calls_admin_step() == (
            f"denied: Function {admin_step.__qualname__} has required roles, but user is "
            "not authenticated for any of them"
        )
    assert calls["admin_step"] == 1
    assert DBOS.list_workflow_steps(refused) == []  # the refused step wrote nothing
    # A worker's execution reads the roles from the workflow's row.
    with DBOSContextSetAuth("alice", ["admin"]):
        handle = DBOS.start_workflow(calls_admin_step)
    assert handle.get_result(timeout=60) == "ran as admin, then None"


def test_the_error_survives_pickle_and_json() -> None:
    error = DBOSNotAuthorizedError("no")
    for copy in (
        pickle.loads(pickle.dumps(error)),
        make_serializer("json").loads(make_serializer("json").dumps(error)),
    ):
        assert isinstance(copy, DBOSNotAuthorizedError)
        assert (copy.msg, copy.dbos_error_code, str(copy)) == ("no", 8, "DBOS Error 8: no")


# -- DBOSClient and bad input ----------------------------------------------------------


def test_the_client_enqueues_as_a_user() -> None:
    client = DBOSClient(DATABASE_URL, BROKER_URL)
    try:
        handle = client.enqueue(
            {
                "workflow_name": admin_or_user.__qualname__,
                "queue_name": TEST_QUEUE,
                "authenticated_user": "frank",
                "authenticated_roles": ["user"],
            }
        )
        result = handle.get_result(timeout=60)
        assert result["workflow"] == identity("frank", ["user"], "user")
        recorded = client.list_workflows(workflow_ids=[handle.workflow_id])[0]
        assert (recorded.authenticated_user, recorded.authenticated_roles) == ("frank", ["user"])
        # Without the options, nobody: the role check refuses it.
        refused = client.enqueue(
            {"workflow_name": admin_or_user.__qualname__, "queue_name": TEST_QUEUE}
        )
        with pytest.raises(DBOSNotAuthorizedError, match="without authentication information"):
            refused.get_result(timeout=60)
    finally:
        client.destroy()


@pytest.mark.parametrize(
    ("user", "roles"),
    [("alice", "admin"), ("alice", ["admin", 1]), ("alice", ("admin",)), (7, ["admin"])],
)
def test_bad_identities_are_refused_and_nothing_is_written(user: Any, roles: Any) -> None:
    with pytest.raises(DBOSException, match="must be a"):
        DBOSContextSetAuth(user, roles)
    client = DBOSClient(DATABASE_URL, BROKER_URL)
    workflow_id = new_id()
    try:
        with pytest.raises(DBOSException, match="must be a"):
            client.enqueue(
                {
                    "workflow_name": child_whoami.__qualname__,
                    "queue_name": TEST_QUEUE,
                    "workflow_id": workflow_id,
                    "authenticated_user": user,
                    "authenticated_roles": roles,
                }
            )
    finally:
        client.destroy()
    assert nothing_written(workflow_id)


def test_required_roles_takes_a_list_of_strings() -> None:
    with pytest.raises(ValueError, match="list of strings"):
        DBOS.required_roles("admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list of strings"):
        DBOS.required_roles([None])  # type: ignore[list-item]


# -- recovery (a subprocess worker SIGKILLed and replaced) ------------------------------


def test_the_identity_survives_a_killed_worker(redis_faults: Faults) -> None:
    faults = redis_faults
    faults.add_trigger("identity-step", "kill-worker")
    first = faults.start_worker()
    handle = faults.client.enqueue(
        {
            "workflow_name": "identity_parent",
            "queue_name": faults.queue,
            "allow_unregistered": True,
            "authenticated_user": "grace",
            "authenticated_roles": ["user", "admin"],
        }
    )
    first.process.wait(timeout=60)  # the step killed its own worker
    faults.start_worker()
    expected = ["grace", ["user", "admin"], "admin", "grace"]
    assert handle.get_result(timeout=90) == {
        "workflow": expected,
        "step": expected,
        "child": {"workflow": expected, "step": expected},
    }
    assert faults.effects(handle.workflow_id) == Counter({"identity-step": 2})
    recorded = faults.client.list_workflows(workflow_ids=[handle.workflow_id])[0]
    assert (recorded.authenticated_user, recorded.authenticated_roles) == (
        "grace",
        ["user", "admin"],
    )
