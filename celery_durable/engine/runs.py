"""What one execution of a workflow is asked to do (:class:`RunOptions`) and what it came
to (:class:`RunResult`): the engine's words with the layer above, and with what
observes an execution (``observed.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from celery_durable.store import Dispatch, NewWorkflow, ReportedOutcome

RunOutcome = Literal[
    "completed",
    "busy",
    "stale",
    "finished",
    "missing",
    "exceeded",
    "throttled",
    "cancelled",
    "version",
    "unrecorded",
    "recorded",
]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How one execution runs.

    Attributes:
        inline_retries: Step retries sleep in this thread (a direct call) instead of
            raising :class:`RescheduleWorkflow`.
        generation: The delivery's dispatch generation (None: not a delivery).
        max_countdown_seconds: Longer waits are parked in PostgreSQL for the recovery
            sweep instead of riding the broker.
        max_recovery_attempts: The workflow code's declaration, which overrides the one
            recorded when the workflow was enqueued.
        executor_id: Who runs it (default: the engine's); queues' ``worker_concurrency``
            counts per executor.
        new: A direct call's new workflow: written in the claim's round trip.
        reported: A Celery task's outcome, recorded in the claim's round trip; the
            workflow runs only if that woke it (and no execution was running it).
    """

    inline_retries: bool
    generation: int | None = None
    max_countdown_seconds: float | None = None
    max_recovery_attempts: int | None = None
    executor_id: str | None = None
    new: NewWorkflow | None = None
    reported: ReportedOutcome | None = None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What one execution attempt came to.

    ``outcome`` is ``completed`` when this execution ran the workflow to its end (then
    ``status`` is SUCCESS or ERROR with ``output`` or ``error``); ``cancelled`` when it
    stopped at a step boundary because the workflow was cancelled; otherwise it is the
    claim's outcome (``busy``, ``stale``, ``finished``, ``missing``, ``exceeded``,
    ``throttled``: its queue's limits hold it for ``wait_seconds``, or ``version``: it
    runs on ``app_version``, not this engine's; a worker of that version is alive when
    ``wait_seconds`` is set, else the workflow is parked for one) and nothing ran. After
    a ``reported`` outcome it may also be ``unrecorded`` (a duplicate: nothing done) or
    ``recorded`` (the workflow runs elsewhere, or is no longer PENDING); a claim that
    did not run the workflow it woke carries the dispatch to publish (``woken``).
    """

    outcome: RunOutcome
    status: str | None
    output: Any = None
    error: BaseException | None = None
    wait_seconds: float = 0.0
    # A direct call that found its workflow finished: the recorded (output, error).
    recorded: tuple[str | None, str | None] | None = None
    app_version: str | None = None
    # Completed, and a Celery canvas (chain, group, chord) waits for the outcome.
    in_canvas: bool = False
    woken: Dispatch | None = None
