"""DBOS 3.4's process-level members: ``DBOS.executor_id``, ``span``, ``tracer``,
``set_authentication``, ``DBOSContextEnsure``, ``PropagateOtelContext``, and the
members that say what to use instead (``kafka_consumer``, ``alert_handler``), and
``listen_queues`` refused after launch (tests/integration/test_porting.py runs it)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from celery_durable import (
    DBOS,
    DBOSContextEnsure,
    KafkaMessage,
    PropagateOtelContext,
    SetWorkflowID,
)
from celery_durable.error import DBOSException


@DBOS.workflow()
def who_runs_me() -> tuple[str | None, str | None]:
    return DBOS.authenticated_user, DBOS.workflow_id


def test_executor_id_is_the_one_recorded_on_what_this_process_runs(dbos: type[DBOS]) -> None:
    workflow_id = f"extras-{uuid.uuid4()}"
    with SetWorkflowID(workflow_id):
        who_runs_me()
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None
    assert status.executor_id == DBOS.executor_id


def test_set_authentication_acts_as_the_user_from_then_on(dbos: type[DBOS]) -> None:
    def as_ann() -> tuple[str | None, list[str] | None, str | None]:
        DBOS.set_authentication("ann", ["admin"])
        user, _ = who_runs_me()
        return DBOS.authenticated_user, DBOS.authenticated_roles, user

    # In a context of its own, so the identity does not outlive the test.
    assert contextvars.copy_context().run(as_ann) == ("ann", ["admin"], "ann")
    assert DBOS.authenticated_user is None
    with pytest.raises(DBOSException, match="roles"):
        DBOS.set_authentication("ann", "admin")  # type: ignore[arg-type]


@DBOS.workflow()
async def sets_its_user_in_one_task() -> list[str | None]:
    reader_started, identity_set = asyncio.Event(), asyncio.Event()

    async def setter() -> None:
        await reader_started.wait()
        DBOS.set_authentication("bea", ["admin"])
        identity_set.set()

    async def reader() -> str | None:
        reader_started.set()  # running already when its sibling sets the identity
        await identity_set.wait()
        return DBOS.authenticated_user

    _, seen = await asyncio.gather(setter(), reader())
    return [seen, DBOS.authenticated_user, DBOS.authenticated_roles and "admin"]


def test_set_authentication_in_workflow_code_applies_to_the_whole_workflow(
    dbos: type[DBOS],
) -> None:
    # As DBOS: the workflow's identity, seen by its other tasks and after them.
    workflow_id = f"extras-{uuid.uuid4()}"

    async def direct() -> list[str | None]:
        with SetWorkflowID(workflow_id):
            return await sets_its_user_in_one_task()

    assert asyncio.run(direct()) == ["bea", "bea", "admin"]
    assert DBOS.authenticated_user is None  # nothing outside the workflow changed


def test_span_and_tracer_are_opentelemetry_s(dbos: type[DBOS]) -> None:
    assert not DBOS.span.get_span_context().is_valid  # no span yet
    tracer = DBOS.tracer
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("outer") as outer:
        assert DBOS.span is outer
    with tracer.start_as_current_span("celery_durable's tracer"):
        assert DBOS.span is trace.get_current_span()


def test_propagate_otel_context_makes_the_given_context_current(dbos: type[DBOS]) -> None:
    remote = SpanContext(
        trace_id=0x1234,
        span_id=0x5678,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    context = trace.set_span_in_context(NonRecordingSpan(remote))
    with PropagateOtelContext(context):
        assert trace.get_current_span().get_span_context().trace_id == 0x1234
    assert trace.get_current_span().get_span_context().trace_id != 0x1234
    with PropagateOtelContext(), DBOSContextEnsure():
        assert who_runs_me()[1] is not None


def test_what_a_celery_deployment_does_elsewhere_says_what_to_use(
    dbos: type[DBOS], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(DBOSException, match="after DBOS is launched"):
        DBOS.listen_queues(["q1", "q2"])
    with pytest.raises(DBOSException, match="SetWorkflowID"):
        DBOS.kafka_consumer({"bootstrap.servers": "kafka:9092"}, ["orders"])

    def on_alert(name: str, message: str, metadata: dict[str, str]) -> None:
        pass

    with caplog.at_level(logging.WARNING, logger="dbos"):
        assert DBOS.alert_handler(on_alert) is on_alert
    assert "Conductor" in caplog.text
    message = KafkaMessage(
        headers=None,
        key=b"k",
        latency=None,
        leader_epoch=None,
        offset=1,
        partition=0,
        timestamp=(0, 0),
        topic="orders",
        value=b"v",
    )
    assert message.topic == "orders"
