"""One workflow execution, announced to this process's probe (see
:mod:`celery_durable.core.instrumentation`): nothing happens when none is installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from celery_durable.core import instrumentation
from celery_durable.core.instrumentation import WorkflowOutcome
from celery_durable.core.signals import RescheduleWorkflow

if TYPE_CHECKING:
    from celery_durable.engine.executor import RunResult, _Run


@contextlib.contextmanager
def observed(run: _Run) -> Iterator[None]:
    """Wraps a claimed execution's ``running``: its start, and what it came to."""
    probe = instrumentation.probe
    if probe is None:
        yield
        return
    observation = probe.workflow_started(run.context.workflow_id, run.context.workflow_name)
    try:
        yield
    except RescheduleWorkflow:
        observation.end("rescheduled")
        raise
    except BaseException as error:
        observation.end("interrupted", error)
        raise
    outcome = _outcome(run.result)
    observation.end(outcome, run.result.error if run.result is not None else None)


def _outcome(result: RunResult | None) -> WorkflowOutcome:
    if result is None or result.outcome == "finished":
        # Its outcome was not ours to write: someone else (a cancel) changed its status.
        return "cancelled"
    if result.status == "SUCCESS":
        return "success"
    if result.status == "ERROR":
        return "error"
    return "cancelled"
