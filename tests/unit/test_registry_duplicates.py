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
