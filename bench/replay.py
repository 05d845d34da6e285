"""Replay: resuming a workflow whose first 100 steps are recorded.

A 101-step workflow runs in-process; its last step raises :class:`SimulatedCrash`
(a ``BaseException``, as a dying process would leave it: the workflow stays PENDING
with 100 checkpoints). Calling it again with the same id resumes it: the claim loads
every checkpoint in the same round trip, the 100 steps return their recorded values,
and only the last step runs. Each repetition also times a fresh 1-step workflow, in a
rotated order, so that ``(resume - 1-step) ÷ 100`` is the cost of replaying one step.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

from sqlalchemy import event

from bench import counting
from bench.db import recreate_database
from bench.report import Figure, Result
from bench.settings import database_url
from bench.stats import interleaved, pairwise_differences
from bench.workflows import (
    SimulatedCrash,
    configure,
    crash_next,
    hundred_steps_then_crash_once,
    one_step,
)
from celery_durable import DBOS, SetWorkflowID

NAME = "replay"
RECORDED_STEPS = 100


@dataclass(frozen=True, kw_only=True)
class Params:
    repetitions: int


FULL = Params(repetitions=15)
QUICK = Params(repetitions=2)


class _Replays:
    def __init__(self) -> None:
        self.first_runs: list[float] = []
        self.statements: list[list[str]] = []

    def resume(self) -> float:
        """Crashes a fresh workflow after 100 steps, then times its resumption (µs)."""
        workflow_id = f"replay-{uuid.uuid4()}"
        crash_next.add(workflow_id)
        started = time.perf_counter_ns()
        try:
            with SetWorkflowID(workflow_id):
                hundred_steps_then_crash_once()
        except SimulatedCrash:
            pass
        else:
            raise AssertionError("the last step did not crash")
        self.first_runs.append((time.perf_counter_ns() - started) / 1000)
        statements: list[str] = []

        def record(statement: str) -> None:
            statements.append(" ".join(statement.split()))

        def on_statement(conn: object, cursor: object, statement: str, *args: object) -> None:
            record(statement)

        engines = counting.system_engines()
        for engine in engines:
            event.listen(engine, "before_cursor_execute", on_statement)
        # The per-step checkpoint and the outcome go to the driver: the store reports them.
        listeners = counting.stores().store.connections.statement_listeners
        listeners.append(record)
        try:
            started = time.perf_counter_ns()
            with SetWorkflowID(workflow_id):
                result = hundred_steps_then_crash_once()
            elapsed = (time.perf_counter_ns() - started) / 1000
        finally:
            listeners.remove(record)
            for engine in engines:
                event.remove(engine, "before_cursor_execute", on_statement)
        assert result == "done"
        self.statements.append(statements)
        return elapsed


def _one_step_us() -> float:
    started = time.perf_counter_ns()
    one_step()
    return (time.perf_counter_ns() - started) / 1000


def run(params: Params = FULL) -> Result:
    url = database_url(NAME)
    recreate_database(url)
    configure(url)
    replays = _Replays()
    try:
        replays.resume()  # warm-up
        _one_step_us()
        replays.first_runs.clear()
        replays.statements.clear()
        times = interleaved(
            params.repetitions, {"resume": replays.resume, "one_step": _one_step_us}
        )
    finally:
        DBOS.destroy()
    per_step = [
        difference / RECORDED_STEPS
        for difference in pairwise_differences(times["resume"], times["one_step"])
    ]
    kinds = [counting.statement_kind(s) for s in replays.statements[0]]
    return Result(
        benchmark=NAME,
        figures=[
            Figure.of(
                "first run: 100 steps, then the crash",
                [t / 1000 for t in replays.first_runs],
                "ms",
            ),
            Figure.of(
                "resume: replay 100 steps + run 1", [t / 1000 for t in times["resume"]], "ms"
            ),
            Figure.of("fresh 1-step workflow", [t / 1000 for t in times["one_step"]], "ms"),
            Figure.of("replay per recorded step ((resume - 1-step) ÷ 100)", per_step, "µs"),
            Figure.count(
                "statements issued by the resume",
                float(len(replays.statements[0])),
                "stmt",
                ", ".join(kinds),
            ),
        ],
        params={**asdict(params), "resume_statement_counts": [len(s) for s in replays.statements]},
    )
