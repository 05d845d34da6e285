"""A flaky API retried with exponential backoff: the specification's ``call_flaky_api``.

The fake API answers 503 to the first ``fail_times`` attempts (a query parameter of the
URL, default 2), so the workflow shows that many retries in Flower, 2 s then 4 s apart,
each naming the step ``robust_api_call``, before it succeeds.
"""

from __future__ import annotations

from typing import Any

from celery_durable import DBOS
from worker.examples import fakes


@DBOS.step(name="robust_api_call", max_attempts=5, interval_seconds=2.0, backoff_rate=2.0)
def call_flaky_api(url: str) -> dict[str, Any]:
    """Retries up to 5 times with exponential backoff: 2s, 4s, 8s, 16s"""
    return fakes.flaky_get(url)


@DBOS.workflow()
def fetch_with_backoff(url: str) -> dict[str, Any]:
    return call_flaky_api(url)
