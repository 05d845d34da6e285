"""The worker's background passes when the system database does not answer.

A worker that cannot reach PostgreSQL says so in one line, as Celery says it of its
broker (``Cannot connect to the system database postgresql://...: <why>. Trying again
in 2 seconds...``), and tries again after growing intervals (1 s, doubling, at most
``MAX_SECONDS``) instead of every pass; one line says when it is back.
"""

from __future__ import annotations

import logging
import threading
import time

from celery_durable.error import DBOSException, DBOSSystemDatabaseError

logger = logging.getLogger("celery_durable.recovery")

FIRST_SECONDS = 1.0
MAX_SECONDS = 30.0


def one_line(error: BaseException) -> str:
    """The error's message on one line (libpq adds an indented hint on a second)."""
    text = error.message if isinstance(error, DBOSException) else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _seconds(delay: float) -> str:
    return "1 second" if delay == 1 else f"{delay:g} seconds"


class Reachability:
    """Whether the passes that need the system database failed, and when to try again.

    Args:
        database: The database's URL with its password hidden (for the messages).
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._failures = 0
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def due(self) -> bool:
        """False while backing off after a failure."""
        return time.monotonic() >= self._next_try

    def failed(self, what: str, error: BaseException) -> float:
        """Logs one line and backs off; returns the seconds until the next try."""
        with self._lock:
            delay = min(FIRST_SECONDS * float(2 ** min(self._failures, 16)), MAX_SECONDS)
            self._failures += 1
            self._next_try = time.monotonic() + delay
        if isinstance(error, DBOSSystemDatabaseError):
            logger.error(
                "Cannot connect to the system database %s: %s. Trying again in %s...",
                self.database,
                one_line(error),
                _seconds(delay),
            )
        else:
            logger.warning(
                "%s failed: %s. Trying again in %s...", what, one_line(error), _seconds(delay)
            )
        return delay

    def succeeded(self) -> None:
        """Ends a backoff (one line if there was one)."""
        with self._lock:
            failures, self._failures, self._next_try = self._failures, 0, 0.0
        if failures:
            logger.info("Connected to the system database %s", self.database)
