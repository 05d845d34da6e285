"""A workflow name registered twice (engine/registry.py), as DBOS 3.4 treats it: from
the same module or source file (a reload, a file imported under two names, a redefined
function) it replaces the first with a warning; from another module and file it raises."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from celery_durable.engine.registry import Registry, WorkflowSpec
from celery_durable.error import DBOSException


def spec(function: Callable[..., Any]) -> WorkflowSpec:
    return WorkflowSpec(
        name="shared_name", function=function, is_async=False, max_recovery_attempts=1
    )


def defined_in(module: str, filename: str) -> Callable[..., Any]:
    """A function whose code comes from ``filename``, in module ``module``."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile("def shared_name():\n    return 1\n", filename, "exec"), namespace)
    function: Callable[..., Any] = namespace["shared_name"]
    return function


def first() -> int:
    return 1


def second() -> int:
    return 2


def test_a_name_registered_again_from_the_same_module_warns_and_replaces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    registry.register(spec(first))
    with caplog.at_level(logging.WARNING, "dbos"):
        registry.register(spec(second))
    assert "Duplicate registration of function 'shared_name'" in caplog.text
    found = registry.get("shared_name")
    assert found is not None and found.function is second


def test_the_same_file_under_another_module_name_warns(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry()
    registry.register(spec(defined_in("package.workflows", "/src/workflows.py")))
    with caplog.at_level(logging.WARNING, "dbos"):
        registry.register(spec(defined_in("workflows", "/src/workflows.py")))
    assert "Duplicate registration of function 'shared_name'" in caplog.text


def test_two_functions_of_other_modules_and_files_cannot_share_a_name() -> None:
    registry = Registry()
    original = defined_in("orders", "/src/orders.py")
    registry.register(spec(original))
    with pytest.raises(DBOSException, match=r"orders at /src/orders\.py and billing at"):
        registry.register(spec(defined_in("billing", "/src/billing.py")))
    found = registry.get("shared_name")
    assert found is not None and found.function is original


def test_registering_the_same_function_again_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry()
    registry.register(spec(first))
    with caplog.at_level(logging.WARNING, "dbos"):
        registry.register(spec(first))
    assert caplog.text == ""


def test_required_roles_above_a_workflow_is_not_a_duplicate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``@DBOS.required_roles`` re-registers the workflow it wraps (executions run the
    checked function): that is the same workflow, not a second one."""
    from celery_durable import DBOS

    with caplog.at_level(logging.WARNING):

        @DBOS.required_roles(["billing"])
        @DBOS.workflow(name="unit_roles_checked_once")
        def renew() -> int:
            return 1

    assert "Duplicate registration" not in caplog.text


def test_a_step_name_shared_by_two_modules_warns_with_the_step_name_and_the_last_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A step's temporary workflow (``<temp>.<name>``): step names need not be unique
    across modules, so DBOS only warns, naming the step without the prefix."""
    registry = Registry()
    orders = defined_in("orders", "/src/orders.py")
    billing = defined_in("billing", "/src/billing.py")
    registry.register(temporary(orders))
    with caplog.at_level(logging.WARNING, "dbos"):
        registry.register(temporary(billing))
    assert "Duplicate registration of function 'shared_name'" in caplog.text
    found = registry.get("<temp>.shared_name")
    assert found is not None and found.function is billing


def temporary(function: Callable[..., Any]) -> WorkflowSpec:
    return WorkflowSpec(
        name="<temp>.shared_name",
        function=function,
        is_async=False,
        max_recovery_attempts=1,
        temporary=True,
    )


def test_a_decorated_step_registers_its_temporary_workflow_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``@DBOS.step()`` registers ``<temp>.<name>``; ``@DBOS.required_roles`` above it
    re-registers the same workflow (checking the roles), which is no duplicate."""
    from celery_durable import DBOS

    registry = DBOS._registry
    with caplog.at_level(logging.WARNING):

        @DBOS.required_roles(["billing"])
        @DBOS.step(name="unit_temp_step")
        def charge() -> int:
            return 1

    assert "Duplicate registration" not in caplog.text
    found = registry.get("<temp>.unit_temp_step")
    assert found is not None and found.temporary
    assert registry.get("unit_temp_step") is None  # the step itself is no workflow
