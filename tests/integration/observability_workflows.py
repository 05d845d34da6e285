"""Workflows of ``tests/integration/test_observability.py``, served by
``tests.integration.observability_app``."""

from __future__ import annotations

import os
import time

from celery_durable import DBOS, Queue

QUEUE = "celery_durable_observability"
queue = Queue(QUEUE)


@DBOS.step(max_attempts=2, interval_seconds=0.2)
def obs_flaky() -> int:
    """Fails its first attempt, then returns the pid of the process that ran it."""
    if DBOS.step_status.current_attempt == 0:
        raise RuntimeError("first attempts fail")
    return os.getpid()


@DBOS.step()
def obs_pause(seconds: float) -> None:
    time.sleep(seconds)


@DBOS.workflow()
def obs_workflow(key: str) -> int:
    pid = obs_flaky()
    obs_pause(0.3)
    return pid
