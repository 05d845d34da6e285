"""Context managers that name and shape the next workflows started in their block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery_durable.engine.context import enqueue_options, next_workflow_id
from celery_durable.error import DBOSException

MAX_PRIORITY = 2**31 - 1


class SetWorkflowID:
    """Names the next workflow started in this block.

    ``with SetWorkflowID("order-1"): DBOS.start_workflow(...)`` is idempotent: the same
    id never runs the workflow twice; a second start returns the first one's handle.
    """

    def __init__(self, workflow_id: str) -> None:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise DBOSException(f"A workflow id must be a non-empty string, not {workflow_id!r}")
        self.workflow_id = workflow_id
        self._token: Any = None

    def __enter__(self) -> SetWorkflowID:
        self._token = next_workflow_id.set(self.workflow_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        next_workflow_id.reset(self._token)


@contextlib.contextmanager
def SetEnqueueOptions(
    *, deduplication_id: str | None = None, priority: int | None = None
) -> Iterator[None]:
    """Enqueue options for workflows started in this block (as in DBOS).

    Args:
        deduplication_id: While a workflow of the queue with this id is ENQUEUED or
            PENDING, enqueuing another raises ``DBOSQueueDeduplicatedError``.
        priority: 0 to 2**31-1; lower runs first on queues with ``priority_enabled``.
    """
    if deduplication_id is not None and (
        not isinstance(deduplication_id, str) or not deduplication_id
    ):
        raise DBOSException(
            f"deduplication_id must be a non-empty string, not {deduplication_id!r}"
        )
    if priority is not None and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= MAX_PRIORITY
    ):
        raise DBOSException(
            f"priority must be an integer from 0 to {MAX_PRIORITY}, not {priority!r}"
        )
    token = enqueue_options.set({"deduplication_id": deduplication_id, "priority": priority})
    try:
        yield
    finally:
        enqueue_options.reset(token)
