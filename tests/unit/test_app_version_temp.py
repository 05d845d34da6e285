"""The application version (integration/app_version.py) hashes workflow code only: a
step's temporary workflow (``<temp>.<name>``) has none of its own to replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery_durable.engine.registry import WorkflowSpec
from celery_durable.integration.app_version import compute_app_version


def workflow() -> int:
    return 1


def step_body() -> int:
    return 2


def other_step_body() -> int:
    return 3


def spec(function: Callable[..., Any], *, temporary: bool) -> WorkflowSpec:
    name = function.__qualname__
    return WorkflowSpec(
        name=f"<temp>.{name}" if temporary else name,
        function=function,
        is_async=False,
        max_recovery_attempts=1,
        temporary=temporary,
    )


def test_temporary_workflows_do_not_change_the_application_version() -> None:
    alone = compute_app_version("app", [spec(workflow, temporary=False)])
    with_step = compute_app_version(
        "app", [spec(workflow, temporary=False), spec(step_body, temporary=True)]
    )
    with_other_step = compute_app_version(
        "app", [spec(workflow, temporary=False), spec(other_step_body, temporary=True)]
    )
    assert alone == with_step == with_other_step
    # A workflow's code still counts.
    assert compute_app_version("app", [spec(step_body, temporary=False)]) != alone
