"""Workflows, steps and transactions as methods (``@DBOS.dbos_class``,
``DBOSConfiguredInstance``), run by a real Celery worker; DBOS 3.4's
tests/test_classdecorators.py in our words. Recovery by another process after a SIGKILL
is in tests/integration/test_classes_recovery.py."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from celery_durable import DBOS, DBOSConfiguredInstance, DBOSContextSetAuth, SetWorkflowID
from celery_durable.error import (
    DBOSConflictingWorkflowError,
    DBOSException,
    DBOSNotAuthorizedError,
)

pytestmark = pytest.mark.usefixtures("worker")

calls: Counter[str] = Counter()


@DBOS.dbos_class()
class Pricing(DBOSConfiguredInstance):
    """An instance's state (its rate) is what its workflows must see again."""

    def __init__(self, config_name: str, rate: int) -> None:
        self.rate = rate
        super().__init__(config_name)

    @DBOS.workflow()
    def quote(self, amount: int, *, label: str = "q") -> str:
        calls[f"quote:{self.config_name}"] += 1
        return f"{label}:{self.priced(amount)}:{self.counted(amount)}"

    @DBOS.step()
    def priced(self, amount: int) -> int:
        calls[f"priced:{self.config_name}"] += 1
        return amount * self.rate

    @DBOS.transaction()
    def counted(self, amount: int) -> int:
        row = DBOS.sql_session.execute(text("SELECT :a * :r"), {"a": amount, "r": self.rate})
        return int(row.scalar_one())

    @DBOS.workflow()
    async def quote_async(self, amount: int) -> int:
        return await self.priced_async(amount)

    @DBOS.step()
    async def priced_async(self, amount: int) -> int:
        return amount * self.rate

    @classmethod
    @DBOS.workflow()
    def kind(cls, value: int) -> str:
        return f"{cls.__name__}:{value}"

    @staticmethod
    @DBOS.workflow()
    def plain(value: int) -> int:
        return value + 1


# Created when the module is imported, as a worker imports it.
cheap = Pricing("cheap", rate=2)
dear = Pricing("dear", rate=10)


@DBOS.workflow()
def quotes_both(amount: int) -> list[str]:
    """Children that are instance methods of two instances of one class."""
    return [cheap.quote(amount), dear.quote(amount, label="d")]


@DBOS.dbos_class(class_name="RenamedPricing")
class Renamed:
    @classmethod
    @DBOS.workflow()
    def who(cls) -> str:
        return cls.__name__


def test_an_instance_workflow_runs_on_its_instance_and_records_its_names() -> None:
    handle = DBOS.start_workflow(dear.quote, 3, label="x")
    assert handle.get_result(timeout=30) == "x:30:30"
    status = handle.get_status()
    assert (status.class_name, status.config_name) == ("Pricing", "dear")
    # The receiver is recorded by name, not among the inputs.
    assert status.input == {"args": [3], "kwargs": {"label": "x"}}


def test_a_direct_call_of_an_instance_workflow_runs_once_per_id() -> None:
    workflow_id = f"quote-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert cheap.quote(4) == "q:8:8"
    ran = calls["quote:cheap"]
    with SetWorkflowID(workflow_id):
        assert cheap.quote(4) == "q:8:8"
    assert calls["quote:cheap"] == ran  # the recorded outcome, not a new run
    status = DBOS.retrieve_workflow(workflow_id).get_status()
    assert (status.class_name, status.config_name) == ("Pricing", "cheap")


def test_an_id_reused_on_another_instance_is_refused_with_dbos_text() -> None:
    workflow_id = f"quote-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        assert cheap.quote(4) == "q:8:8"
    expected = (
        f"DBOS Error 9: Conflicting workflow invocation with the same ID ({workflow_id}): "
        "Workflow already exists with a different config name: cheap, "
        "but the provided config name is: dear"
    )
    ran = calls["quote:dear"]
    for call in (lambda: dear.quote(4), lambda: DBOS.start_workflow(dear.quote, 4)):
        with SetWorkflowID(workflow_id), pytest.raises(DBOSConflictingWorkflowError) as raised:
            call()
        assert str(raised.value) == expected
    assert calls["quote:dear"] == ran  # nothing ran
    with SetWorkflowID(workflow_id):
        assert cheap.quote(4) == "q:8:8"  # its own instance still gets its outcome


def test_an_async_instance_workflow() -> None:
    handle = DBOS.start_workflow(dear.quote_async, 2)
    assert handle.get_result(timeout=30) == 20
    assert handle.get_status().config_name == "dear"
    with SetWorkflowID(f"async-{uuid.uuid4()}"):
        assert asyncio.run(cheap.quote_async(2)) == 4


def test_a_fork_runs_on_the_same_instance() -> None:
    original = DBOS.start_workflow(dear.quote, 1)
    assert original.get_result(timeout=30) == "q:10:10"
    before = calls["priced:dear"]
    forked = DBOS.fork_workflow(original.workflow_id, 2)  # replays the step, re-runs the rest
    assert forked.get_result(timeout=30) == "q:10:10"
    assert calls["priced:dear"] == before
    assert (forked.get_status().class_name, forked.get_status().config_name) == ("Pricing", "dear")


def test_children_of_two_instances_each_find_their_own() -> None:
    handle = DBOS.start_workflow(quotes_both, 5)
    assert handle.get_result(timeout=30) == ["q:10:10", "d:50:50"]
    children = DBOS.list_workflows(name="Pricing.quote")
    names = {
        (child.config_name, child.parent_workflow_id)
        for child in children
        if child.parent_workflow_id == handle.workflow_id
    }
    assert names == {("cheap", handle.workflow_id), ("dear", handle.workflow_id)}


def test_class_and_static_method_workflows() -> None:
    handle = DBOS.start_workflow(Pricing.kind, 7)
    assert handle.get_result(timeout=30) == "Pricing:7"
    status = handle.get_status()
    assert (status.class_name, status.config_name) == ("Pricing", None)
    assert status.input == {"args": [7], "kwargs": {}}
    # Called on an instance, a class method still records its class.
    assert DBOS.start_workflow(cheap.kind, 8).get_status().config_name is None

    handle = DBOS.start_workflow(Pricing.plain, 1)
    assert handle.get_result(timeout=30) == 2
    status = handle.get_status()
    assert (status.class_name, status.config_name) == (None, None)


def test_a_class_is_recorded_under_its_registered_name() -> None:
    handle = DBOS.start_workflow(Renamed.who)
    assert handle.get_result(timeout=30) == "Renamed"
    assert handle.get_status().class_name == "RenamedPricing"


def test_an_instance_without_a_config_name_is_refused() -> None:
    @DBOS.dbos_class()
    class Unnamed:
        @DBOS.workflow()
        def run(self) -> str:
            return "never"

    with pytest.raises(DBOSException, match="does not have `config_name` set"):
        Unnamed().run()


def test_a_class_without_the_decorator_is_refused() -> None:
    class Forgotten(DBOSConfiguredInstance):
        @DBOS.workflow()
        def run(self) -> str:
            return "never"

        @classmethod
        @DBOS.workflow()
        def run_class(cls) -> str:
            return "never"

    instance = Forgotten(f"forgotten-{uuid.uuid4()}")
    with pytest.raises(DBOSException, match="class instance, but is not properly registered"):
        instance.run()
    with pytest.raises(DBOSException, match="a class, but is not properly registered"):
        Forgotten.run_class()


def test_duplicate_classes_and_instances_are_refused() -> None:
    @DBOS.dbos_class()
    class Twice(DBOSConfiguredInstance):
        pass

    # DBOS raises a plain Exception with its bare message (no "DBOS Error: ").
    with pytest.raises(Exception) as refused:

        @DBOS.dbos_class(class_name=Twice.__qualname__)
        class Other:
            pass

    assert str(refused.value) == f"Duplicate type registration for class '{Twice.__qualname__}'"
    Twice("one")
    with pytest.raises(Exception) as refused:
        Twice("one")
    assert str(refused.value) == (
        f"Duplicate instance registration for class '{Twice.__qualname__}' instance 'one'"
    )
    Twice("two")  # another name of the same class


def test_workflows_and_steps_carry_dbos_function_name() -> None:
    """DBOS sets its registered name on the decorated function and on the wrapper."""

    def plain_workflow() -> None: ...

    async def plain_step() -> None: ...

    workflow = DBOS.workflow(name="named_by_dbos")(plain_workflow)
    step = DBOS.step()(plain_step)
    assert workflow.dbos_function_name == "named_by_dbos"  # type: ignore[attr-defined]
    assert plain_workflow.dbos_function_name == "named_by_dbos"  # type: ignore[attr-defined]
    assert step.dbos_function_name == plain_step.__qualname__  # type: ignore[attr-defined]
    assert plain_step.dbos_function_name == plain_step.__qualname__  # type: ignore[attr-defined]


def test_two_steps_of_one_name_log_dbos_duplicate_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "dbos"):

        @DBOS.step(name="a_step_name_used_twice")
        def first() -> int:
            return 1

        assert "Duplicate registration" not in caplog.text

        @DBOS.step(name="a_step_name_used_twice")
        async def second() -> int:
            return 2

    assert "Duplicate registration of function 'a_step_name_used_twice'" in caplog.text


def test_steps_of_a_class_without_workflows_need_no_decorator() -> None:
    class Helper:
        def __init__(self, base: int) -> None:
            self.base = base

        @DBOS.step()
        def add(self, value: int) -> int:
            return self.base + value

    assert Helper(5).add(1) == 6


@DBOS.default_required_roles(["user"])
class Guarded(DBOSConfiguredInstance):
    def __init__(self) -> None:
        super().__init__("guarded")

    @DBOS.workflow()
    def as_user(self) -> str | None:
        return DBOS.assumed_role

    @DBOS.required_roles(["admin"])
    @DBOS.workflow()
    def as_admin(self) -> str | None:
        return DBOS.assumed_role

    @classmethod
    @DBOS.workflow()
    def as_user_class(cls) -> str | None:
        return DBOS.assumed_role

    @staticmethod
    @DBOS.step()
    def step_as_user() -> str | None:
        return DBOS.assumed_role


guarded = Guarded()


def test_default_required_roles_apply_unless_a_method_names_its_own() -> None:
    for call in (guarded.as_user, guarded.as_admin, Guarded.as_user_class, Guarded.step_as_user):
        with pytest.raises(DBOSNotAuthorizedError, match="requires a role"):
            call()
    with DBOSContextSetAuth("ann", ["user"]):
        assert guarded.as_user() == "user"
        assert Guarded.as_user_class() == "user"
        assert Guarded.step_as_user() == "user"
        with pytest.raises(DBOSNotAuthorizedError, match="not authenticated for any"):
            guarded.as_admin()
    with DBOSContextSetAuth("bob", ["admin"]):
        assert guarded.as_admin() == "admin"
        handle = DBOS.start_workflow(guarded.as_admin)
        assert handle.get_result(timeout=30) == "admin"
        assert (handle.get_status().class_name, handle.get_status().config_name) == (
            "Guarded",
            "guarded",
        )
