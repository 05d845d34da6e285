"""The engine over the in-memory store, driven as the Celery integration drives it.

``deliver`` is one Celery delivery of a workflow's message (a reschedule comes back as
the signal, as ``Task.retry`` would get it); ``call`` is a direct in-process call, whose
retries, sleeps and children wait in this thread. Time is the test's :class:`Clock`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from celery_durable.core.records import StepRecord
from celery_durable.core.retry import RetryPolicy
from celery_durable.core.serialization import make_serializer
from celery_durable.core.signals import RescheduleWorkflow
from celery_durable.engine.executor import RunOptions, RunResult, WorkflowEngine
from celery_durable.engine.ports import EngineStore
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.engine.steps import StepSpec, run_step
from celery_durable.store.rows import Dispatch, NewWorkflow
from tests.unit.memory_store import MemoryStore


class Clock:
    """The wall clock the engine reads (``core.clock``) and the sleeps of its in-process
    waits, under the test's control: sleeping advances it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Launcher:
    """The engine's ``Launcher``: children get a row here and run through the harness."""

    child_poll_seconds = 5.0

    def __init__(self, harness: Harness) -> None:
        self._harness = harness
        self.published: list[tuple[str, Dispatch]] = []
        self.dispatched_tasks: list[tuple[Any, str]] = []
        self.unsent_tasks: list[tuple[str, BaseException]] = []

    def start_child(
        self,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str,
        parent_workflow_id: str,
        publish: bool,
        queue_name: str | None = None,
    ) -> None:
        row = self._harness.row(spec.name, args, kwargs, workflow_id, status="ENQUEUED")
        inserted = self._harness.store.workflows.insert_workflow(
            dataclasses.replace(row, parent_workflow_id=parent_workflow_id)
        )
        if inserted and publish:
            self.publish(workflow_id, Dispatch(name=spec.name, queue_name=None, generation=0))

    def run_inline(self, workflow_id: str, spec: WorkflowSpec) -> Any:
        return self._harness.run_to_end(workflow_id)

    def publish(self, workflow_id: str, dispatch: Dispatch) -> None:
        self.published.append((workflow_id, dispatch))

    def dispatch_task(
        self, signature: Any, *, task_id: str, workflow_id: str, function_id: int
    ) -> None:
        self.dispatched_tasks.append((signature, task_id))

    def report_unsent_task(
        self, workflow_id: str, function_id: int, task_id: str, error: BaseException
    ) -> None:
        self.unsent_tasks.append((task_id, error))


class Harness:
    """One engine, its in-memory store, its launcher and its registered workflows."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.serializer = make_serializer("json")
        self.store = MemoryStore()
        self.launcher = Launcher(self)
        self.specs: dict[str, WorkflowSpec] = {}
        store: EngineStore = self.store  # the in-memory store is one (checked by mypy)
        self.engine = WorkflowEngine(
            store=store,
            serializer=self.serializer,
            executor_id="unit",
            lookup=self.specs.get,
            launcher=self.launcher,
            dispatch=self.launcher.publish,
        )

    def workflow(self, function: Callable[..., Any], name: str | None = None) -> WorkflowSpec:
        """Registers ``function`` under ``name`` (default: its own, which must be free)."""
        name = name or function.__name__
        assert name not in self.specs, f"workflow name {name!r} is taken: pass another"
        spec = WorkflowSpec(name=name, function=function, is_async=False, max_recovery_attempts=3)
        self.specs[name] = spec
        return spec

    def row(
        self, name: str, args: Any, kwargs: Any, workflow_id: str, *, status: Any
    ) -> NewWorkflow:
        return NewWorkflow(
            workflow_uuid=workflow_id,
            name=name,
            status=status,
            queue_name=None,
            inputs=self.serializer.dumps({"args": list(args), "kwargs": dict(kwargs)}),
            authenticated_user=None,
            max_recovery_attempts=3,
        )

    def enqueue(self, spec: WorkflowSpec, *args: Any, workflow_id: str) -> str:
        """A workflow's row, ENQUEUED (its message is delivered with :meth:`deliver`)."""
        self.store.workflows.insert_workflow(
            self.row(spec.name, args, {}, workflow_id, status="ENQUEUED")
        )
        return workflow_id

    def deliver(self, workflow_id: str, generation: int = 0) -> RunResult | RescheduleWorkflow:
        """One Celery delivery: the run's result, or the reschedule it raised."""
        options = RunOptions(inline_retries=False, generation=generation)
        try:
            return self.engine.run(workflow_id, options)
        except RescheduleWorkflow as signal:
            return signal

    def call(self, spec: WorkflowSpec, *args: Any, workflow_id: str) -> RunResult:
        """A direct in-process call (the row is written by the claim)."""
        new = self.row(spec.name, args, {}, workflow_id, status="PENDING")
        return self.engine.run(workflow_id, RunOptions(inline_retries=True, new=new))

    def run_to_end(self, workflow_id: str) -> Any:
        """A direct call's child: runs in this thread until it has an outcome."""
        while True:
            try:
                result = self.engine.run(workflow_id, RunOptions(inline_retries=True))
            except RescheduleWorkflow as signal:
                self.clock.sleep(signal.countdown_seconds)
                continue
            if result.error is not None:
                raise result.error
            return result.output

    def steps(self, workflow_id: str) -> list[StepRecord]:
        return self.store.workflows.list_steps(workflow_id)

    def outcome(self, workflow_id: str) -> tuple[str, Any]:
        """``(status, output or error)``, deserialized."""
        found = self.store.workflows.get_outcome(workflow_id)
        assert found is not None
        _, status, output, error = found
        if error is not None:
            return status, self.serializer.loads(error)
        return status, None if output is None else self.serializer.loads(output)


def step(
    name: str, function: Callable[..., Any], policy: RetryPolicy | None = None
) -> Callable[..., Any]:
    """``@DBOS.step`` without the facade: the engine's step runner around ``function``."""
    spec = StepSpec(name=name, policy=policy or RetryPolicy(retries_allowed=False))

    def call(*args: Any, **kwargs: Any) -> Any:
        return run_step(spec, function, args, kwargs)

    return call
