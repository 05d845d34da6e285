"""Debouncing, as DBOS 3.4 does it (``Debouncer``, ``DebouncerClient``): a workflow
started with a delay under the key ``{workflow name}-{debounce key}``; each debounce of
the key while it waits (DELAYED) moves its start to ``debounce_period_sec`` from now and
replaces its inputs with the latest, until ``debounce_timeout_sec`` after the first.

Once it starts running, the next debounce of the key starts a new workflow. A debounce
in workflow code is a checkpointed step (``DBOS.debounce``): a replay returns the same
workflow without debouncing again.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.retry import RetryPolicy
from celery_durable.engine import checkpoints
from celery_durable.engine.context import in_workflow_code
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.engine.steps import StepSpec, run_step
from celery_durable.error import DBOSException, DBOSQueueDeduplicatedError
from celery_durable.integration.enqueue import EnqueueSettings

if TYPE_CHECKING:
    from celery_durable.service.workflows import WorkflowService

DEBOUNCE_STEP = StepSpec(name="DBOS.debounce", policy=RetryPolicy(retries_allowed=False))


def refuse_conflicting_options(options: Mapping[str, Any], *, reject_reuse: bool) -> None:
    """A debounce owns its workflow's deduplication id and delay (DBOS's checks).

    Raises:
        DBOSException: a deduplication id, delay, priority, partition key,
            ``duplication_policy="return-existing"`` or ``workflow_id_reuse_policy=
            "reject"`` given for a debounced workflow.
    """
    if options.get("deduplication_id") is not None:
        raise DBOSException(
            "Cannot debounce a workflow with a deduplication_id set: the debounce "
            "key is used as the workflow's deduplication ID."
        )
    if options.get("delay_seconds") is not None:
        raise DBOSException(
            "Cannot debounce a workflow with a delay set: the debounce period "
            "controls the workflow's delay."
        )
    if options.get("priority") is not None:
        raise DBOSException(
            "Cannot debounce a workflow with a priority set: priority is not "
            "supported for debounced workflows."
        )
    if options.get("queue_partition_key") is not None:
        raise DBOSException(
            "Cannot debounce a workflow with a queue partition key set: partitioned "
            "queues do not support deduplication, which debouncing requires."
        )
    if options.get("duplication_policy") == "return-existing":
        raise DBOSException(
            "Cannot debounce a workflow with duplication_policy 'return-existing': "
            "a debounce owns the workflow's deduplication behavior."
        )
    if reject_reuse:
        raise DBOSException(
            "Cannot debounce a workflow with workflow_id_reuse_policy 'reject': "
            "a debounce owns how its workflow is started."
        )


def check_timeout(debounce_timeout_sec: object) -> None:
    if debounce_timeout_sec is not None and not _positive(debounce_timeout_sec):
        raise DBOSException(
            f"debounce_timeout_sec must be a positive number, not {debounce_timeout_sec!r}"
        )


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def debounce(
    service: WorkflowService,
    spec: WorkflowSpec,
    *,
    key: str,
    period_seconds: float,
    timeout_seconds: float | None,
    queue_name: str | None,
    workflow_id: str | None,
    settings: EnqueueSettings,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    require_registered: bool = False,
) -> str:
    """Debounces ``spec`` under ``key``; returns the id of the workflow that will run
    (a step in workflow code).

    Raises:
        DBOSQueueDeduplicatedError: the key is held by a workflow that is not this
            workflow's debounce (another name, or not debounced).
    """
    if not isinstance(key, str):
        raise DBOSException(f"A debounce key must be a string, not {key!r}")
    if not (_positive(period_seconds) or period_seconds == 0):
        raise DBOSException(f"debounce_period_sec must be a number >= 0, not {period_seconds!r}")

    def once() -> str:
        return _debounce_once(
            service,
            spec,
            key=key,
            period_seconds=period_seconds,
            timeout_seconds=timeout_seconds,
            queue_name=queue_name,
            workflow_id=workflow_id,
            settings=settings,
            args=args,
            kwargs=kwargs,
            require_registered=require_registered,
        )

    return _as_step(once) if in_workflow_code() is not None else once()


def _as_step(operation: Callable[[], str]) -> str:
    """The debounce as the workflow's step; a system database failure is not its
    outcome (it reschedules the workflow, which debounces again)."""

    def unrecorded_database_failures() -> str:
        with checkpoints.system_database_failure_reschedules():
            return operation()

    result: str = run_step(DEBOUNCE_STEP, unrecorded_database_failures, (), {})
    return result


def _debounce_once(
    service: WorkflowService,
    spec: WorkflowSpec,
    *,
    key: str,
    period_seconds: float,
    timeout_seconds: float | None,
    queue_name: str | None,
    workflow_id: str | None,
    settings: EnqueueSettings,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    require_registered: bool,
) -> str:
    now = now_epoch_ms()
    deadline = None if timeout_seconds is None else now + round(timeout_seconds * 1000)
    delay_until = now + round(period_seconds * 1000)
    if deadline is not None:
        delay_until = min(delay_until, deadline)
    options = EnqueueSettings(**settings)
    options["deduplication_id"] = f"{spec.name}-{key}"
    options["delay_seconds"] = period_seconds
    row = service.runtime.starter.new_row(
        spec,
        args,
        kwargs,
        status="ENQUEUED",
        queue_name=queue_name,
        workflow_id=workflow_id or str(uuid.uuid4()),
        options=options,
        require_registered=require_registered,
    )
    row = dataclasses.replace(row, delay_until_epoch_ms=delay_until)
    done = service.runtime.process.store.debouncing.debounce(row, deadline_epoch_ms=deadline)
    if done.conflict:
        raise DBOSQueueDeduplicatedError(
            done.workflow_id, str(row.queue_name), str(row.deduplication_id)
        )
    return done.workflow_id
