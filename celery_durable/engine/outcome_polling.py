"""Waiting for a workflow's outcome from outside it (handles, direct calls).

One poller decides what to do next; the synchronous and asynchronous waits differ only
in how they sleep. The poll backs off from 5 ms to 250 ms. A system database that
fails after the first poll (a restart) is waited out, not raised.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from celery_durable.core.outcomes import decode_outcome
from celery_durable.core.serialization import Serializer
from celery_durable.engine.ports import EngineStore
from celery_durable.error import DBOSNonExistentWorkflowError, DBOSSystemDatabaseError

_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.25


class OutcomePoller:
    """Polls one workflow's row until it is finished.

    Args:
        timeout: Seconds to wait at most (None: no limit).
        max_poll_seconds: The longest sleep between two polls (the backoff's ceiling;
            None: 250 ms). DBOS's ``polling_interval_sec``.
        wait_for_creation: A workflow that does not exist yet is waited for (as DBOS's
            ``DBOS.get_result``), not an error.
    """

    def __init__(
        self,
        store: EngineStore,
        serializer: Serializer,
        workflow_id: str,
        timeout: float | None,
        *,
        max_poll_seconds: float | None = None,
        wait_for_creation: bool = False,
    ) -> None:
        self.workflow_id = workflow_id
        self._store = store
        self._serializer = serializer
        self._timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._max_delay = _MAX_POLL_SECONDS if max_poll_seconds is None else max_poll_seconds
        self._delay = min(_FIRST_POLL_SECONDS, self._max_delay)
        self._wait_for_creation = wait_for_creation
        self._first = True
        self.output: Any = None

    def poll(self) -> float | None:
        """Reads the workflow once.

        Returns:
            None when it finished successfully (its output is in ``output``), otherwise
            how long to sleep before polling again.

        Raises:
            Exception: the workflow's failure (its own error, cancellation, ...).
            TimeoutError: the timeout passed first (the workflow goes on).
        """
        try:
            row = self._store.workflows.get_outcome(self.workflow_id)
        except DBOSSystemDatabaseError:
            if self._first:
                raise
            row = ("", "PENDING", None, None)  # a database restart: keep waiting
        if row is None and self._wait_for_creation:
            row = ("", "PENDING", None, None)
        if row is None:
            raise DBOSNonExistentWorkflowError(self.workflow_id)
        self._first = False
        _, status, output, error = row
        done, self.output = decode_outcome(
            self.workflow_id, status, output, error, self._serializer
        )
        if done:
            return None
        delay = self._delay
        self._delay = min(self._delay * 2, self._max_delay)
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"Workflow {self.workflow_id} did not finish within {self._timeout}s"
                )
            delay = min(delay, remaining)
        return delay


def wait_for(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    timeout: float | None = None,
    **polling: Any,
) -> Any:
    """Blocks until the workflow finishes; returns its output or raises its failure.
    ``polling``: ``OutcomePoller``'s ``max_poll_seconds`` and ``wait_for_creation``."""
    poller = OutcomePoller(store, serializer, workflow_id, timeout, **polling)
    while (delay := poller.poll()) is not None:
        time.sleep(delay)
    return poller.output


async def wait_for_async(
    store: EngineStore,
    serializer: Serializer,
    workflow_id: str,
    timeout: float | None = None,
    **polling: Any,
) -> Any:
    """``wait_for`` for async callers (each poll runs in a thread)."""
    poller = OutcomePoller(store, serializer, workflow_id, timeout, **polling)
    while (delay := await asyncio.to_thread(poller.poll)) is not None:
        await asyncio.sleep(delay)
    return poller.output
