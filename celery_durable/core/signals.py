"""Control-flow signals that unwind a workflow through user code.

They derive from ``BaseException`` so that a workflow's ``except Exception:`` cannot
swallow them, as DBOS does for its own cancellation signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery_durable.core.records import StepRecord, Wait


class RescheduleWorkflow(BaseException):
    """Stop this execution; run the workflow again in ``countdown_seconds``.

    The engine raises it when a step has failed with attempts left (after recording the
    attempt) or when a step's next attempt is not yet due. The Celery integration turns
    it into ``Task.retry(countdown=...)``; a direct in-process call sleeps instead.

    Attributes:
        countdown_seconds: How long to wait before the next execution.
        reason: One line for operators: step, attempt, error and delay.
        routine: A wait the workflow asked for (a sleep, a message, a child, a step
            attempt not yet due), logged at DEBUG; a failure's retry is not routine.
    """

    def __init__(self, countdown_seconds: float, reason: str, *, routine: bool = False) -> None:
        self.countdown_seconds = countdown_seconds
        self.reason = reason
        self.routine = routine
        # Set by the engine once it has released the workflow until the due time:
        self.due_at_epoch_ms: int | None = None
        self.parked = False  # the sweep, not a Celery countdown, will dispatch it
        self.generation: int | None = None  # the dispatch generation it wrote
        # The workflow's task name and queue, when its claim followed a task's outcome
        # (the process that continues it publishes its next message).
        self.workflow_name: str | None = None
        self.queue_name: str | None = None
        # What the workflow waits for, if a message or an event can end the wait early.
        self.wait: Wait | None = None
        # A checkpoint written in the reschedule's statement (a Celery task's attempt
        # recorded in flight), and what to do once both are committed (send the task).
        self.checkpoint: StepRecord | None = None
        self.after_parked: Callable[[], None] | None = None
        # The wait ends when a Celery task's callback records its outcome (and runs the
        # workflow on): a parked delivery needs no Celery retry of its own.
        self.ended_by_callback = False
        super().__init__(countdown_seconds, reason)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.countdown_seconds, self.reason))


class WorkflowCancelled(BaseException):
    """The workflow was cancelled: stop at this step boundary, record nothing more."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(workflow_id)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.workflow_id,))
