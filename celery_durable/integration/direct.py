"""Direct calls: a workflow run to its end in the calling process.

Calling a workflow function outside any workflow runs it here, durably, as DBOS does:
its step retries and sleeps wait in this thread, and its queue's limits are waited out.
The synchronous and ``async`` callers share :class:`DirectCall`; they differ only in
how they run the engine and sleep.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from celery_durable.core.outcomes import decode_outcome
from celery_durable.core.serialization import Serializer
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSAwaitedWorkflowCancelledError, DBOSNonExistentWorkflowError
from celery_durable.store import NewWorkflow

# How long a direct call waits for its queue's limits before asking again, at most.
MAX_THROTTLE_WAIT_SECONDS = 5.0


class DirectCall:
    """The executions of one direct call, until one of them settles it.

    Drive it with: ``result = engine.run(workflow_id, call.options)`` (a
    ``RescheduleWorkflow`` raised by it is a result too), then ``call.wait_after(result)``:
    sleep that long and run again, or, when it is None, read ``call.outcome()``.

    Args:
        new: A direct call's workflow row, written by the first claim only.
    """

    def __init__(self, workflow_id: str, spec: WorkflowSpec, new: NewWorkflow | None) -> None:
        self.workflow_id = workflow_id
        self.options = RunOptions(
            inline_retries=True, max_recovery_attempts=spec.max_recovery_attempts, new=new
        )
        self._result: RunResult | None = None

    def wait_after(self, result: RunResult | RescheduleWorkflow) -> float | None:
        """Seconds to wait before the next execution; None once the call is settled."""
        self.options = dataclasses.replace(self.options, new=None)
        if isinstance(result, RescheduleWorkflow):
            return result.countdown_seconds
        if result.outcome == "throttled":
            return min(result.wait_seconds, MAX_THROTTLE_WAIT_SECONDS)
        self._result = result
        return None

    def outcome(self, serializer: Serializer) -> tuple[bool, Any]:
        """``(True, output)`` when this process knows the outcome (it ran the workflow,
        or found it finished); ``(False, None)`` when another process runs it and the
        caller must wait for its row. Raises the workflow's failure."""
        result = self._result
        assert result is not None, "outcome() before the call settled"
        if result.outcome == "completed":
            if result.error is not None:
                raise result.error
            return True, result.output
        if result.recorded is not None and result.status is not None:
            output, error = result.recorded
            return decode_outcome(self.workflow_id, result.status, output, error, serializer)
        if result.outcome == "missing":
            raise DBOSNonExistentWorkflowError(self.workflow_id)
        if result.outcome == "cancelled":
            raise DBOSAwaitedWorkflowCancelledError(self.workflow_id)
        return False, None
