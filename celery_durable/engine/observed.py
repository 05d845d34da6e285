"""One workflow execution, announced to this process's probe (see
:mod:`celery_durable.core.instrumentation`): nothing happens when none is installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from celery_durable.core import instrumentation
from celery_durable.core.instrumentation import WorkflowOutcome
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.context import WorkflowContext
from celery_durable.engine.runs import RunResult


class ObservedRun(Protocol):
    """What is observed of a claimed execution: whose it is, and (once its body ran)
    what it came to."""

    @property
    def context(self) -> WorkflowContext: ...

    @property
    def result(self) -> RunResult | None: ...


@contextlib.contextmanager
def observed(run: ObservedRun) -> Iterator[None]:
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
