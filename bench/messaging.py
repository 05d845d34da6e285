"""Messaging latency: a send waking a waiting workflow, a set_event a waiting get_event.

Through a real worker (``--pool=prefork --concurrency=2``, Redis), one sample at a time:

- *send → next step starts.* A workflow waits in ``DBOS.recv`` (``bench.recv_then_step``):
  its task has been re-queued and the worker is free (the benchmark waits until the row
  says so: ``wait_key`` set, no live execution). The benchmark reads the clock, calls
  ``DBOSClient.send``; the send publishes the workflow again at once, a pool process
  replays it, ``recv`` takes the message and the next step records when it started.
  Latency = step start - the clock read before the send.
- *set_event → get_event returns.* A ``DBOSClient.get_event`` waits in a thread of this
  process (for a LISTEN/NOTIFY notification) while the workflow
  (``bench.recv_then_set_event``) waits in ``recv``, so that the benchmark decides when
  the event is set: it sends the message, the workflow wakes, reads the clock and sets
  the event to that time. Latency = when ``get_event`` returned - the clock read just
  before ``set_event`` (so the wake-up of the workflow is not counted); *send →
  get_event returns* counts the whole chain.

Both clocks are ``time.time()`` on this machine. The two kinds of sample alternate,
after a few unmeasured ones (pool processes' connections, the listener's). Between
samples nothing polls: the benchmark waits ``settle_seconds`` before each send (the
workflow's task has ended, the ``get_event`` waiter subscribed) and after it, before it
reads the outcome (``get_result`` polls the database).

DBOS Transact 3.4 is measured the same way in the same run, in its own virtualenv and
process (:mod:`bench.dbos_transact_script` ``--mode=messaging``), where its workflows
run in threads; not with ``--quick`` (it installs DBOS). The ratios are of medians.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import dbos_transact
from bench.db import create_tables, recreate_database
from bench.report import Figure, Result
from bench.settings import BROKER_URL, IDLE_QUEUE, database_url
from bench.stats import median, percentile
from bench.workers import kill_worker, start_worker, wait_ready
from bench.workflows import EVENT_KEY, EVENT_TOPIC, MESSAGE_TOPIC, app
from celery_durable import DBOSClient

NAME = "messaging"


@dataclass(frozen=True, kw_only=True)
class Params:
    samples: int  # of each kind
    warmup: int  # unmeasured samples of each kind
    settle_seconds: float
    timeout_seconds: float
    dbos_transact: bool  # measure DBOS Transact too (installs it on first use)


FULL = Params(samples=50, warmup=5, settle_seconds=0.05, timeout_seconds=60, dbos_transact=True)
QUICK = Params(samples=3, warmup=1, settle_seconds=0.02, timeout_seconds=30, dbos_transact=False)

Sample = dict[str, float]


class Waits:
    """Reads the workflows' rows to know when one waits in ``recv`` with its worker free."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)

    def until_waiting(self, workflow_id: str, topic: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            row = self.connection.execute(
                "SELECT wait_key, execution_active FROM celery_durable.workflow_status "
                "WHERE workflow_uuid = %s",
                (workflow_id,),
            ).fetchone()
            if row is not None and row[0] == f"msg:{topic}" and not row[1]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} never waited in recv: {row}")
            time.sleep(0.005)

    def close(self) -> None:
        self.connection.close()


def _message_sample(client: DBOSClient, waits: Waits, params: Params) -> Sample:
    handle = client.enqueue({"workflow_name": "bench.recv_then_step", "allow_unregistered": True})
    waits.until_waiting(handle.workflow_id, MESSAGE_TOPIC, params.timeout_seconds)
    time.sleep(params.settle_seconds)
    sent_at = time.time()
    client.send(handle.workflow_id, "ping", MESSAGE_TOPIC)
    returned_at = time.time()
    time.sleep(params.settle_seconds)  # get_result polls: not while the wake is measured
    result = handle.get_result(timeout=params.timeout_seconds)
    if result["message"] != "ping":
        raise RuntimeError(f"workflow {handle.workflow_id} received {result!r}")
    return {
        "step_ms": (result["started_at"] - sent_at) * 1000,
        "send_call_ms": (returned_at - sent_at) * 1000,
    }


def _event_sample(client: DBOSClient, waits: Waits, params: Params) -> Sample:
    handle = client.enqueue(
        {"workflow_name": "bench.recv_then_set_event", "allow_unregistered": True}
    )
    waits.until_waiting(handle.workflow_id, EVENT_TOPIC, params.timeout_seconds)
    got: dict[str, Any] = {}

    def wait_for_event() -> None:
        got["value"] = client.get_event(
            handle.workflow_id, EVENT_KEY, timeout_seconds=params.timeout_seconds
        )
        got["at"] = time.time()

    waiter = threading.Thread(target=wait_for_event, name="bench-get-event")
    waiter.start()
    time.sleep(params.settle_seconds)  # the waiter has subscribed and found nothing yet
    sent_at = time.time()
    client.send(handle.workflow_id, "go", EVENT_TOPIC)
    waiter.join(params.timeout_seconds)
    if got.get("value") is None:
        raise TimeoutError(f"get_event on {handle.workflow_id} returned nothing")
    result = handle.get_result(timeout=params.timeout_seconds)
    if result["message"] != "go" or result["set_at"] != got["value"]:
        raise RuntimeError(f"workflow {handle.workflow_id}: {result!r}, event {got!r}")
    return {
        "set_to_get_ms": (got["at"] - got["value"]) * 1000,
        "send_to_get_ms": (got["at"] - sent_at) * 1000,
    }


def _measure(
    variants: dict[str, Callable[[], Sample]], samples: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """The kinds of sample alternate (the order swapped every other pair)."""
    for _ in range(warmup):
        for variant in variants.values():
            variant()
    measured: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for index in range(samples):
        names = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in names:
            for figure, value in variants[name]().items():
                measured[name].setdefault(figure, []).append(value)
    return measured


def _measure_ours(url: str, params: Params, log: Path) -> dict[str, dict[str, list[float]]]:
    create_tables(url)  # before the worker starts
    client = DBOSClient(url, celery=app)
    waits = Waits(url)
    worker = start_worker(database_url=url, queues=[IDLE_QUEUE], log=log)
    try:
        wait_ready(worker)
        return _measure(
            {
                "message": lambda: _message_sample(client, waits, params),
                "event": lambda: _event_sample(client, waits, params),
            },
            params.samples,
            params.warmup,
        )
    except (TimeoutError, RuntimeError) as error:
        raise type(error)(f"{error}\n{worker.log_tail()}") from error
    finally:
        kill_worker(worker)
        waits.close()
        client.destroy()


def _measure_dbos(params: Params) -> tuple[dict[str, Any] | None, str]:
    if not params.dbos_transact:
        return None, "not measured with --quick (it installs DBOS)"
    return dbos_transact.run_script(
        [
            "--mode=messaging",
            f"--samples={params.samples}",
            f"--warmup={params.warmup}",
            f"--settle={params.settle_seconds}",
            f"--timeout={params.timeout_seconds}",
        ],
        timeout=600,
    )


def _latency(label: str, samples: list[float], note: str) -> list[Figure]:
    return [
        Figure.of(label, samples, "ms", note),
        Figure.count(f"{label}: p90", percentile(samples, 0.9), "ms", f"of {len(samples)}"),
    ]


def run(params: Params = FULL, *, log_dir: Path | None = None) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    redis.Redis.from_url(BROKER_URL).flushdb()
    log = (log_dir or Path(tempfile.mkdtemp(prefix="bench-"))) / f"{NAME}-worker.log"
    ours = _measure_ours(url, params, log)
    theirs, reason = _measure_dbos(params)
    figures = [
        *_latency(
            "send → next step starts",
            ours["message"]["step_ms"],
            "DBOSClient.send; worker prefork -c 2, Redis",
        ),
        Figure.of(
            "DBOSClient.send returns",
            ours["message"]["send_call_ms"],
            "ms",
            "included in send → next step",
        ),
        *_latency(
            "set_event → get_event returns",
            ours["event"]["set_to_get_ms"],
            "DBOSClient.get_event, LISTEN/NOTIFY",
        ),
        Figure.of(
            "send → get_event returns",
            ours["event"]["send_to_get_ms"],
            "ms",
            "wake, recv, set_event, notify",
        ),
    ]
    if theirs is None:
        if params.dbos_transact:  # it could not be measured: say why, in the table
            figures.append(Figure(label="DBOS Transact 3.4", value=None, unit="", note=reason))
    else:
        version = theirs["version"]
        dbos_step = theirs["message"]["step_ms"]
        dbos_event = theirs["event"]["set_to_get_ms"]
        figures += [
            *_latency(f"DBOS {version}: send → next step starts", dbos_step, "in-process"),
            Figure.of(
                f"DBOS {version}: DBOS.send returns",
                theirs["message"]["send_call_ms"],
                "ms",
                "included in send → next step",
            ),
            *_latency(
                f"DBOS {version}: set_event → get_event returns",
                dbos_event,
                "in-process, notifications coalesced 10 ms",
            ),
            Figure.of(
                f"DBOS {version}: send → get_event returns",
                theirs["event"]["send_to_get_ms"],
                "ms",
            ),
            Figure.count(
                "send → next step: celery_durable ÷ DBOS",
                median(ours["message"]["step_ms"]) / median(dbos_step),
                "x",
                "ratio of medians; < 1: celery_durable sooner",
            ),
            Figure.count(
                "set_event → get_event: celery_durable ÷ DBOS",
                median(ours["event"]["set_to_get_ms"]) / median(dbos_event),
                "x",
                "ratio of medians; < 1: celery_durable sooner",
            ),
        ]
    return Result(
        benchmark=NAME,
        figures=figures,
        params={
            **asdict(params),
            "celery_durable": ours,
            "dbos_transact": theirs if theirs is not None else reason,
            "worker_log": str(log),
        },
    )
