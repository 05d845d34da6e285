"""DBOSClient.enqueue's EnqueueOptions as DBOS 3.4 takes them: what is refused (and
with which words), and what is stored with the workflow."""

from __future__ import annotations

import random

import pytest
from celery import current_task
from opentelemetry import context as otel_context
from opentelemetry import trace

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import DBOSException
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")


@DBOS.workflow(name="client_options_echo")
def client_options_echo(value: str) -> str:
    return value


@pytest.fixture
def client() -> DBOSClient:
    return DBOSClient(system_database_url=DATABASE_URL)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_workflow_id_is_refused_and_nothing_is_written(
    client: DBOSClient, blank: str
) -> None:
    before = len(client.list_workflows(name="client_options_echo"))
    try:
        with pytest.raises(DBOSException, match=r"Invalid workflow ID .*: workflow IDs must be"):
            client.enqueue(
                {
                    "workflow_name": "client_options_echo",
                    "queue_name": TEST_QUEUE,
                    "workflow_id": blank,
                },
                "v",
            )
        # Before, an empty id was replaced by a random one and the workflow ran.
        assert client.list_workflows(workflow_ids=[blank]) == []
        assert len(client.list_workflows(name="client_options_echo")) == before
    finally:
        client.destroy()


@pytest.mark.parametrize("blank", ["", "   "])
def test_set_workflow_id_refuses_a_blank_id_in_dbos_words(blank: str) -> None:
    with pytest.raises(DBOSException, match="workflow ID"):
        SetWorkflowID(blank)


@DBOS.workflow(name="client_options_traceparent")
def client_options_traceparent() -> str | None:
    """The trace context its Celery message carried."""
    headers = current_task.request.headers or {}
    value = headers.get("traceparent")
    return None if value is None else str(value)


def test_attributes_are_stored_and_returned_with_the_status(client: DBOSClient) -> None:
    try:
        handle = client.enqueue(
            {
                "workflow_name": "client_options_echo",
                "queue_name": TEST_QUEUE,
                "attributes": {"customer": "acme", "tier": 2},
            },
            "v",
        )
        assert handle.get_result(timeout=20) == "v"
        assert handle.get_status().attributes == {"customer": "acme", "tier": 2}
        found = client.list_workflows(attributes={"customer": "acme"})
        assert handle.workflow_id in [w.workflow_id for w in found]
        plain = client.enqueue({"workflow_name": "client_options_echo"}, "w")
        assert plain.get_status().attributes is None
    finally:
        client.destroy()


def test_bad_attributes_and_a_non_context_are_refused(client: DBOSClient) -> None:
    try:
        for bad, message in (
            ({"attributes": ["a"]}, "Attributes must be a dict"),
            ({"attributes": {"when": object()}}, "Attributes must be JSON-serializable"),
            ({"otel_context": "x"}, "otel_context must be an OpenTelemetry Context"),
        ):
            with pytest.raises(DBOSException, match=message):
                client.enqueue({"workflow_name": "client_options_echo", **bad}, "v")  # type: ignore[typeddict-item]
            # DBOS.enqueue_workflow_with_options takes the same options.
            with pytest.raises(DBOSException, match=message):
                DBOS.enqueue_workflow_with_options(
                    {"workflow_name": "client_options_echo", **bad},  # type: ignore[typeddict-item]
                    "v",
                )
    finally:
        client.destroy()


@pytest.mark.parametrize("publisher", ["client", "worker relay"])
def test_otel_context_is_recorded_and_continued_by_the_workflow(publisher: str) -> None:
    # With a broker the client publishes the message; without one a worker's relay does.
    broker = BROKER_URL if publisher == "client" else None
    client = DBOSClient(system_database_url=DATABASE_URL, broker_url=broker)
    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    caller = trace.NonRecordingSpan(
        trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(1))
    )
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-01"
    try:
        handle = client.enqueue(
            {
                "workflow_name": "client_options_traceparent",
                "queue_name": TEST_QUEUE,
                "otel_context": trace.set_span_in_context(caller),
                # A carrier written by hand loses to the context's, as in DBOS.
                "attributes": {"customer": "acme", "dbos.otelContext": {"traceparent": "x"}},
            }
        )
        # The workflow's message carried the context, so its execution continues it.
        assert handle.get_result(timeout=20) == traceparent
        assert handle.get_status().attributes == {
            "customer": "acme",
            "dbos.otelContext": {"traceparent": traceparent},
        }
    finally:
        client.destroy()


def test_an_otel_context_without_a_span_records_nothing(client: DBOSClient) -> None:
    try:
        handle = client.enqueue(
            {
                "workflow_name": "client_options_traceparent",
                "queue_name": TEST_QUEUE,
                "otel_context": otel_context.Context(),
            }
        )
        assert handle.get_result(timeout=20) is None
        assert handle.get_status().attributes is None
    finally:
        client.destroy()
