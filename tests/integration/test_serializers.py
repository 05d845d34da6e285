"""DBOS 3.4's serializer API: ``WorkflowSerializationFormat.PORTABLE`` on workflows,
``send``, ``set_event`` and ``write_stream``; ``PortableWorkflowError``;
``DBOSPortableJSONSerializer`` as a client's serializer; ``validate_args`` with
``pydantic_args_validator``.

Against real PostgreSQL and the session's Celery worker (Redis), configured with the
default JSON serializer: portable rows are read by it as DBOS reads them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from celery import Celery

from celery_durable import (
    DBOS,
    DBOSClient,
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Serializer,
    SetWorkflowID,
    WorkflowSerializationFormat,
    pydantic_args_validator,
)
from celery_durable.error import DBOSException
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")

PORTABLE = WorkflowSerializationFormat.PORTABLE
LONG_WAIT = 300.0
RESULT_TIMEOUT = 60.0
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


class PaymentDeclined(Exception):
    def __init__(self, message: str, code: int, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@DBOS.workflow(serialization_type=PORTABLE)
def portable_order(when: dt.datetime, amount: Decimal, tags: tuple[str, ...]) -> dict[str, Any]:
    DBOS.set_event("seen", {"when": when})  # the workflow's format by default
    return {
        "when": when,
        "is_datetime": isinstance(when, dt.datetime),
        "amount": amount,
        "tags": tags,
    }


@DBOS.workflow(serialization_type=PORTABLE)
def portable_failure() -> None:
    raise PaymentDeclined("card declined", 402, {"retry": False})


@DBOS.workflow()
def parent_of_portable() -> str:
    try:
        portable_failure()
    except PortableWorkflowError as error:
        return f"{error.name}: {error.message} ({error.code})"
    return "no error"


@DBOS.workflow()
def native_events() -> str:
    DBOS.set_event("native", (1, WHEN))
    DBOS.set_event("portable", (1, WHEN), serialization_type=PORTABLE)
    DBOS.write_stream("s", (2, WHEN))
    DBOS.write_stream("s", (2, WHEN), serialization_type=PORTABLE)
    DBOS.close_stream("s")
    return "done"


@DBOS.workflow()
def ser_receiver() -> list[Any]:
    return [DBOS.recv("t", timeout_seconds=LONG_WAIT) for _ in range(2)]


@DBOS.workflow(validate_args=pydantic_args_validator)
def validated(count: int, when: dt.date, label: str = "none") -> list[Any]:
    return [count, isinstance(count, int), when.isoformat(), label]


def double_first(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (args[0] * 2, *args[1:]), kwargs


@DBOS.workflow(validate_args=double_first)
def custom_validated(value: int) -> int:
    return value


@DBOS.dbos_class()
class PortableJobs:
    @classmethod
    @DBOS.workflow(serialization_type=PORTABLE)
    def at(cls, when: dt.datetime, note: str) -> list[Any]:
        return [cls.__name__, isinstance(when, dt.datetime), note]


@DBOS.workflow()
def plain_echo(when: dt.datetime, items: tuple[int, ...]) -> list[Any]:
    return [isinstance(when, dt.datetime), items]


@pytest.fixture(scope="module")
def sql(dbos: type[DBOS]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        yield connection


def start(workflow: Any, *args: Any, **kwargs: Any) -> Any:
    with SetWorkflowID(f"ser-{uuid.uuid4().hex[:12]}"):
        return DBOS.start_workflow(workflow, *args, **kwargs)


def column(sql: psycopg.Connection[Any], name: str, workflow_id: str) -> str:
    row = sql.execute(
        f"SELECT {name} FROM celery_durable.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_portable_workflow_stores_dboss_portable_json(sql: psycopg.Connection[Any]) -> None:
    handle = start(portable_order, WHEN, Decimal("12.50"), ("a", "b"))
    assert handle.get_result(timeout=RESULT_TIMEOUT) == {
        "when": "2026-01-02T03:04:05.678Z",
        "is_datetime": True,  # coerced back from its type hint, as in DBOS
        "amount": "12.50",
        "tags": ["a", "b"],
    }
    inputs = column(sql, "inputs", handle.workflow_id)
    assert inputs.startswith("!portable:")
    assert json.loads(inputs.removeprefix("!portable:")) == {
        "positionalArgs": ["2026-01-02T03:04:05.678Z", "12.50", ["a", "b"]],
        "namedArgs": {},
    }
    assert (
        json.loads(column(sql, "output", handle.workflow_id).removeprefix("!portable:"))["amount"]
        == "12.50"
    )
    assert DBOS.get_event(handle.workflow_id, "seen") == {"when": "2026-01-02T03:04:05.678Z"}
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None
    assert status.input == {"args": ("2026-01-02T03:04:05.678Z", "12.50", ["a", "b"]), "kwargs": {}}


def test_a_portable_workflows_error_reads_as_portable_workflow_error() -> None:
    handle = start(portable_failure)
    with pytest.raises(PortableWorkflowError) as raised:
        handle.get_result(timeout=RESULT_TIMEOUT)
    error = raised.value
    assert (error.name, error.message, error.code, error.data) == (
        "PaymentDeclined",
        "card declined",
        402,
        {"retry": False},
    )
    assert str(error) == "card declined"


def test_a_parent_sees_its_portable_childs_error_as_portable_workflow_error() -> None:
    handle = start(parent_of_portable)
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "PaymentDeclined: card declined (402)"


def test_events_and_streams_take_a_serialization_type() -> None:
    handle = start(native_events)
    assert handle.get_result(timeout=RESULT_TIMEOUT) == "done"
    assert DBOS.get_event(handle.workflow_id, "native") == (1, WHEN)  # tagged JSON keeps types
    assert DBOS.get_event(handle.workflow_id, "portable") == [1, "2026-01-02T03:04:05.678Z"]
    assert list(DBOS.read_stream(handle.workflow_id, "s")) == [
        (2, WHEN),
        [2, "2026-01-02T03:04:05.678Z"],
    ]


def test_send_takes_a_serialization_type() -> None:
    handle = start(ser_receiver)
    DBOS.send(handle.workflow_id, {"at": WHEN}, "t", serialization_type=PORTABLE)
    DBOS.send(
        handle.workflow_id, {"at": WHEN}, "t", serialization_type=WorkflowSerializationFormat.NATIVE
    )
    assert handle.get_result(timeout=RESULT_TIMEOUT) == [
        {"at": "2026-01-02T03:04:05.678Z"},
        {"at": WHEN},
    ]
    with pytest.raises(
        DBOSException, match="serialization_type must be a WorkflowSerializationFormat"
    ):
        DBOS.send(handle.workflow_id, 1, "t", serialization_type="xml")  # type: ignore[arg-type]


def test_a_client_with_dboss_portable_serializer_talks_to_a_json_deployment() -> None:
    client = DBOSClient(DATABASE_URL, serializer=DBOSPortableJSONSerializer())
    try:
        handle = start(ser_receiver)
        client.send(handle.workflow_id, (1, Decimal("2.5")), "t")
        client.send(handle.workflow_id, "two", "t")
        assert handle.get_result(timeout=RESULT_TIMEOUT) == [[1, "2.5"], "two"]
        events = start(native_events)
        events.get_result(timeout=RESULT_TIMEOUT)
        # It reads the deployment's portable rows, and its tagged-JSON ones too.
        assert client.get_event(events.workflow_id, "portable") == [1, "2026-01-02T03:04:05.678Z"]
        assert client.get_event(events.workflow_id, "native") == (1, WHEN)
        assert client.retrieve_workflow(events.workflow_id).get_result() == "done"
    finally:
        client.destroy()


class JsonText(Serializer):
    def serialize(self, data: Any) -> str:
        return json.dumps(data)

    def deserialize(cls, serialized_data: str) -> Any:
        return json.loads(serialized_data)

    def name(self) -> str:
        return "json_text"


def test_a_custom_serializers_rows_read_as_their_text_where_it_is_not_configured() -> None:
    client = DBOSClient(DATABASE_URL, serializer=JsonText())
    try:
        handle = start(ser_receiver)
        client.send(handle.workflow_id, {"a": 1}, "t")
        client.send(handle.workflow_id, [2], "t")
        # The deployment (JSON) lacks the client's serializer: it reads each message's
        # text, as DBOS does, rather than failing on (or misreading) it.
        assert handle.get_result(timeout=RESULT_TIMEOUT) == ['{"a": 1}', "[2]"]
    finally:
        client.destroy()


def test_pydantic_args_validator_coerces_and_validates_the_inputs() -> None:
    handle = start(validated, "7", "2026-03-04", label="x")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == [7, True, "2026-03-04", "x"]
    refused = start(validated, "seven", "2026-03-04")
    with pytest.raises(ValueError, match="Argument 'count' \\(position 0\\)"):
        refused.get_result(timeout=RESULT_TIMEOUT)
    status = DBOS.get_workflow_status(refused.workflow_id)
    assert status is not None and status.status == "ERROR"


def test_a_custom_validator_replaces_the_arguments() -> None:
    assert start(custom_validated, 21).get_result(timeout=RESULT_TIMEOUT) == 42


def test_unsupported_workflow_options_are_refused_at_decoration() -> None:
    with pytest.raises(DBOSException, match="auto_upgrade=True\\) is not supported"):
        DBOS.workflow(auto_upgrade=True)
    with pytest.raises(DBOSException, match="serialization_type must be"):
        DBOS.workflow(serialization_type="yaml")  # type: ignore[arg-type]
    DBOS.workflow(auto_upgrade=False, serialization_type=WorkflowSerializationFormat.NATIVE)


def test_a_client_enqueues_portable_inputs(sql: psycopg.Connection[Any]) -> None:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app)
    try:
        handle = client.enqueue(
            {
                "workflow_name": plain_echo.__qualname__,
                "queue_name": TEST_QUEUE,
                "serialization_type": PORTABLE,
            },
            WHEN,
            (1, 2),
        )
        assert handle.get_result(timeout=RESULT_TIMEOUT) == [True, [1, 2]]
        assert column(sql, "inputs", handle.workflow_id).startswith("!portable:")
        assert column(sql, "output", handle.workflow_id) == "!portable:[true,[1,2]]"
    finally:
        client.destroy()


def test_a_portable_class_method_gets_its_class_and_coerced_arguments(
    sql: psycopg.Connection[Any],
) -> None:
    handle = start(PortableJobs.at, WHEN, "n")
    assert handle.get_result(timeout=RESULT_TIMEOUT) == ["PortableJobs", True, "n"]
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None and status.class_name == "PortableJobs"
    assert column(sql, "inputs", handle.workflow_id).startswith('!portable:{"positionalArgs"')


def test_a_portable_client_enqueues_in_the_portable_shape(sql: psycopg.Connection[Any]) -> None:
    DBOS._service().runtime.operator.register_served("tests@worker")
    app = Celery("producer", broker=BROKER_URL)
    app.conf.task_default_queue = TEST_QUEUE
    client = DBOSClient(DATABASE_URL, celery=app, serializer=DBOSPortableJSONSerializer())
    try:
        handle = client.enqueue(
            {"workflow_name": plain_echo.__qualname__, "queue_name": TEST_QUEUE}, WHEN, (3,)
        )
        assert handle.get_result(timeout=RESULT_TIMEOUT) == [True, [3]]
        inputs = column(sql, "inputs", handle.workflow_id)
        assert inputs.startswith('!portable:{"positionalArgs":["2026-01-02T03:04:05.678Z"')
        status = client.retrieve_workflow(handle.workflow_id).get_status()
        assert status.input == {"args": ("2026-01-02T03:04:05.678Z", [3]), "kwargs": {}}
    finally:
        client.destroy()
