"""A worker's INFO log has news, not routine: queue waits and sleeps are DEBUG, a step's
failed attempt stays INFO (a real worker subprocess, its log read as an operator would)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_faults import REDIS_URL, _faults, fault_database

__all__ = ["fault_database"]  # a fixture used below


def test_routine_waits_are_debug_and_step_retries_stay_info(
    fault_database: str, tmp_path: Path
) -> None:
    for faults in _faults(REDIS_URL, tmp_path, pool="threads"):
        faults.start_worker(
            concurrency=4,
            CD_FAULT_QUEUE_LIMITS='{"concurrency": 1}',
            CD_FAULT_SLEEP_SECONDS="1",
            CD_FAULT_BACKOFF_SECONDS="0.5",
        )
        occupants = [faults.enqueue("occupy", 0.5) for _ in range(5)]
        sleeper = faults.enqueue("survives", "sleep")
        for handle in occupants:
            assert handle.get_result(timeout=90) == handle.workflow_id
        assert sleeper.get_result(timeout=90) == [0, 1, 2]

        log = faults.worker_log()
        # The queue held some: their tasks were delivered again (retried)...
        received = re.findall(r"Task occupy\[[^\]]+\] received", log)
        assert len(received) > len(occupants), log
        # ... and neither those waits nor the sleep wrote a line at INFO.
        assert "QueueWait" not in log and "sleeping until" not in log, log
        # A step's failed attempt is news: Celery's retry line stays.
        assert re.search(
            r"INFO/.*Task survives\[[^\]]+\] retry: Retry in .*StepRetry: step "
            r"'fails_first_attempt' attempt 1/3 failed",
            log,
        ), log
