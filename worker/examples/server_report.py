"""A report over many servers from an existing Celery task: the fan-in a chord cannot do.

The task ``ops.collect_stats`` belongs to another team's app (``worker/ops_tasks.py``,
which knows nothing of celery_durable) and runs on its own workers and queue (``ops``).
With a chord over 400 servers, one failing header task means the callback never runs
(celery#1881), and a worker that dies mid-way loses the chord's state. Here the workflow
starts one durable task call per server, frees its worker while they run, and gathers
every outcome, failures included: it decides itself what a partial report is. A worker
that dies at any point loses nothing (docs/celery-tasks.md).
"""

from __future__ import annotations

from typing import Any

from celery import signature

from celery_durable import DBOS

OPS_QUEUE = "ops"


@DBOS.workflow()
def server_report(servers: list[str]) -> dict[str, Any]:
    handles = {
        server: DBOS.start_task(
            signature("ops.collect_stats", args=(server,), queue=OPS_QUEUE),
            max_attempts=2,
            interval_seconds=1.0,
            timeout_seconds=300,
        )
        for server in servers
    }
    loads: dict[str, float] = {}
    unreachable: list[str] = []
    for server, handle in handles.items():
        try:
            loads[server] = handle.get_result()["load"]
        except Exception:  # every attempt failed: DBOSMaxStepRetriesExceeded
            unreachable.append(server)
    busiest = sorted(loads, key=loads.__getitem__, reverse=True)[:3]
    return {"answered": len(loads), "unreachable": unreachable, "busiest": busiest}
