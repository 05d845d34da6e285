"""Retry timing: the step retry policy (a pure function of the attempt number) and how
long a workflow waits when a database cannot be reached."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# A workflow whose system or application database failed runs again after this many
# seconds (the failure is the database's, not the workflow's: no attempt is counted).
DATABASE_RETRY_SECONDS = 2.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How a step is retried (the ``@DBOS.step`` options).

    Attempt ``k + 1`` starts ``interval_seconds * backoff_rate ** (k - 1)`` seconds after
    attempt ``k`` fails: for (4, 1.0, 2.0) the attempts start at 0, 1, 3 and 7 s.
    """

    retries_allowed: bool = True
    max_attempts: int = 3
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    # Sync, or (for an async step) ``async def``: its verdict is then awaited there.
    should_retry: Callable[[Exception], bool | Awaitable[bool]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        if not _finite_at_least(self.interval_seconds, 0.0):
            raise ValueError(
                f"interval_seconds must be a finite number >= 0, not {self.interval_seconds!r}"
            )
        if not _finite_at_least(self.backoff_rate, 1.0):
            raise ValueError(
                f"backoff_rate must be a finite number >= 1, not {self.backoff_rate!r}"
            )
        if self.should_retry is not None and not callable(self.should_retry):
            raise ValueError("should_retry must be a callable taking the exception")

    @property
    def attempts_allowed(self) -> int:
        """Attempts this policy permits: one when retries are not allowed."""
        return self.max_attempts if self.retries_allowed else 1

    def retries(self, error: Exception) -> bool:
        """Whether ``error`` may be retried at all (before counting attempts)."""
        if not self.retries_allowed:
            return False
        return self.should_retry is None or bool(self.should_retry(error))

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(self.interval_seconds * self.backoff_rate ** (attempt - 1))


def _finite_at_least(value: object, minimum: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= minimum
    )
