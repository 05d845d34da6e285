"""Where the engine announces its moments to observers (metrics, traces).

The engine, the store and the core import neither ``prometheus_client`` nor
``opentelemetry`` (both are optional extras): they call the one :data:`probe` of this
process, and read it as ``instrumentation.probe`` and test ``is None`` first, so that with
no observer the hot path pays one attribute read per step and builds nothing.
:mod:`celery_durable.observability` implements the probes and installs them.

The probe is process-wide on purpose: what it feeds is too (prometheus_client's
multiprocess files, OpenTelemetry's global TracerProvider), and a pool child forked by a
prefork worker inherits it with the rest of the parent's memory.
"""

from __future__ import annotations

from typing import Literal, Protocol

StepOutcome = Literal["success", "retry", "error"]
"""One attempt of a step: ``success`` (returned and recorded), ``retry`` (raised; another
attempt comes), ``error`` (raised with no attempt left, or its outcome not recorded)."""

WorkflowOutcome = Literal["success", "error", "cancelled", "rescheduled", "interrupted"]
"""One execution of a workflow: it finished (``success``, ``error``), stopped at a step
boundary because it was cancelled (``cancelled``), was released until a retry, a sleep or
a message (``rescheduled``), or was interrupted before its outcome was recorded (the
database failed: a later delivery runs it again)."""


class Observation(Protocol):
    """A moment that has begun (a span, a start time); ``end`` is called exactly once."""

    def end(self, outcome: str, error: BaseException | None = None) -> None: ...


class Probe(Protocol):
    """What the engine announces. Every method must be cheap and must not raise."""

    def workflow_started(self, workflow_id: str, name: str) -> Observation:
        """An execution claimed its workflow and is about to run its code."""
        ...

    def step_started(
        self, workflow_id: str | None, step_name: str, step_id: int | None, attempt: int
    ) -> Observation:
        """One attempt of a step begins (``attempt`` is 1-based; ``workflow_id`` and
        ``step_id`` are None for a step called outside any workflow)."""
        ...

    def checkpoint_recorded(self, seconds: float) -> None:
        """A step's checkpoint was written: the statement's round trip took ``seconds``."""
        ...

    def recovered(self, count: int) -> None:
        """The recovery sweep published ``count`` workflows again."""
        ...


probe: Probe | None = None
"""This process's observer; None (the default) costs the engine nothing."""


def install(new: Probe | None) -> None:
    """Makes ``new`` this process's probe (None: nothing observes)."""
    global probe
    probe = new
