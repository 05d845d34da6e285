"""DBOS 3.4's serializer classes and what needs no service: a custom ``Serializer`` as
``config["serializer"]``, the portable format's markers, ``SetShardKey`` and
``DBOS.shard_key``, ``make_pydantic_args_validator``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery

from celery_durable import (
    DBOS,
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Serializer,
    SetShardKey,
    WorkflowSerializationFormat,
    make_pydantic_args_validator,
)
from celery_durable.core.serialization import make_serializer, writer_for
from celery_durable.core.serializers import PORTABLE
from celery_durable.error import DBOSException, DBOSSerializationError
from celery_durable.integration.process import validated_config


class Reversed(Serializer):
    """A custom serializer: JSON-ish text, reversed."""

    def serialize(self, data: Any) -> str:
        return repr(data)[::-1]

    def deserialize(cls, serialized_data: str) -> Any:
        import ast

        return ast.literal_eval(serialized_data[::-1])

    def name(self) -> str:
        return "reversed"


def test_the_format_enum_is_dboss() -> None:
    assert [f.value for f in WorkflowSerializationFormat] == ["portable", "native", "None"]
    assert WorkflowSerializationFormat("portable") is WorkflowSerializationFormat.PORTABLE


def test_a_custom_serializer_writes_its_own_text_and_reads_portable_rows() -> None:
    serializer = make_serializer(Reversed())
    text = serializer.dumps({"a": (1, 2)})
    assert text == "!serializer:reversed\n" + repr({"a": (1, 2)})[::-1]
    assert serializer.loads(text) == {"a": (1, 2)}
    assert serializer.loads(repr([3])[::-1]) == [3]  # a row written before the marker
    assert serializer.loads(PORTABLE.dumps({"b": [1]})) == {"b": [1]}


def test_a_reader_without_the_custom_serializer_gets_its_text() -> None:
    # As DBOS: a client not configured with the serializer a row names reads the text.
    text = make_serializer(Reversed()).dumps({"a": 1})
    for other in ("json", "pickle", DBOSPortableJSONSerializer(), JsonOnly()):
        assert make_serializer(other).loads(text) == repr({"a": 1})[::-1]


def test_a_custom_serializer_name_must_be_one_line() -> None:
    class TwoLines(Reversed):
        def name(self) -> str:
            return "two\nlines"

    with pytest.raises(DBOSSerializationError, match="one line"):
        make_serializer(TwoLines())


def test_config_takes_a_serializer_instance_and_refuses_other_objects() -> None:
    celery = Celery("t", set_as_current=False)
    merged = validated_config(celery, {"name": "t", "serializer": Reversed()})
    assert isinstance(merged["serializer"], Reversed)
    with pytest.raises(DBOSException, match=r"dbos\.Serializer instance"):
        validated_config(celery, {"name": "t", "serializer": 3})  # type: ignore[typeddict-item]


def test_dboss_portable_serializer_configures_the_portable_format() -> None:
    serializer = make_serializer(DBOSPortableJSONSerializer())
    assert serializer.dumps((1, "a")) == '!portable:[1,"a"]'
    assert serializer.loads('{"__cd__":"tuple","v":[1]}') == (1,)  # a row written before
    assert DBOSPortableJSONSerializer().name() == "portable_json"
    assert DBOSPortableJSONSerializer().serialize({"d": Decimal("1.10")}) == '{"d":"1.10"}'
    error = serializer.loads(serializer.dumps(KeyError("k")))
    assert isinstance(error, PortableWorkflowError)
    assert (error.name, error.message) == ("KeyError", "'k'")


def test_the_portable_format_writes_what_dbos_writes() -> None:
    moment = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert PORTABLE.dumps([moment, dt.date(2026, 1, 2), {1, 2} - {2}, None]) == (
        '!portable:["2026-05-06T05:08:09.000Z","2026-01-02",[1],null]'
    )
    with pytest.raises(DBOSSerializationError, match="non-string keys"):
        PORTABLE.dumps({1: "x"})
    with pytest.raises(DBOSSerializationError, match="not portable JSON serializable"):
        PORTABLE.dumps(object())


def test_json_and_pickle_deployments_read_portable_rows() -> None:
    text = '!portable:{"x":[1,"2"]}'
    assert make_serializer("json").loads(text) == make_serializer("pickle").loads(text)
    assert make_serializer("json").loads(text) == {"x": [1, "2"]}


def test_writer_for_resolves_the_format() -> None:
    json_serializer = make_serializer("json")
    assert writer_for(None, json_serializer, True) is PORTABLE
    assert (
        writer_for(WorkflowSerializationFormat.DEFAULT, json_serializer, False) is json_serializer
    )
    assert writer_for("native", make_serializer(Reversed()), True) is not PORTABLE
    with pytest.raises(DBOSSerializationError, match="WorkflowSerializationFormat"):
        writer_for("bson", json_serializer, False)


def test_set_shard_key_refuses_and_dbos_has_no_shard_key() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        SetShardKey("")
    with pytest.raises(DBOSException, match="sharding is not supported by celery_durable"):
        SetShardKey("tenant-1")
    assert DBOS.shard_key is None


def _typed(count: int, when: dt.date, *rest: int, **extra: str) -> None:
    return None


def test_make_pydantic_args_validator() -> None:
    validate = make_pydantic_args_validator(_typed)
    assert validate(("3", "2026-01-02", "4"), {"x": "y"}) == (
        (3, dt.date(2026, 1, 2), 4),
        {"x": "y"},
    )
    with pytest.raises(ValueError, match="Missing required argument: 'when'"):
        validate((1,), {})
    with pytest.raises(ValueError, match="Argument 'x'"):
        validate((1, "2026-01-02"), {"x": 5})


def _positional_only(n: int, /, **options: str) -> None:
    return None


def test_a_keyword_named_after_a_positional_only_parameter_goes_to_kwargs() -> None:
    validate = make_pydantic_args_validator(_positional_only)
    assert validate((1,), {"n": "x"}) == ((1,), {"n": "x"})
    with pytest.raises(ValueError, match="Missing required argument: 'n'"):
        validate((), {"n": "x"})


def test_a_portable_error_keeps_its_fields_through_json_and_pickle() -> None:
    error = PortableWorkflowError("declined", "PaymentDeclined", 402, {"retry": False})
    for name in ("json", "pickle"):
        serializer = make_serializer(name)
        back = serializer.loads(serializer.dumps(error))
        assert isinstance(back, PortableWorkflowError)
        assert (back.message, back.name, back.code, back.data) == (
            "declined",
            "PaymentDeclined",
            402,
            {"retry": False},
        )


class _Conflict(Exception):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.data = object()  # not portable: recorded as its text


def test_a_portable_error_with_unportable_data_still_records() -> None:
    error = PORTABLE.loads(PORTABLE.dumps(_Conflict("boom")))
    assert isinstance(error, PortableWorkflowError)
    assert (error.name, error.message, error.code) == ("_Conflict", "boom", 409)
    assert isinstance(error.data, str)


def test_an_error_inside_a_portable_value_is_its_payload() -> None:
    log = [{"attempt": 1, "error": KeyError("k")}]
    assert PORTABLE.loads(PORTABLE.dumps(log)) == [
        {"attempt": 1, "error": {"name": "KeyError", "message": "'k'", "code": None}}
    ]


class JsonOnly(Serializer):
    """DBOS's test suite's custom serializer: plain JSON, no exceptions."""

    def serialize(self, data: Any) -> str:
        import json

        return json.dumps(data)

    def deserialize(cls, serialized_data: str) -> Any:
        import json

        return json.loads(serialized_data)


def test_a_custom_serializer_that_cannot_write_an_error_records_it_portable() -> None:
    serializer = make_serializer(JsonOnly())
    error = serializer.loads(serializer.dumps(KeyError("k")))
    assert isinstance(error, PortableWorkflowError) and error.name == "KeyError"
    history = serializer.loads(serializer.dumps([{"attempt": 1, "error": ValueError("v")}]))
    assert history == [
        {"attempt": 1, "error": {"name": "ValueError", "message": "v", "code": None}}
    ]
    assert serializer.dumps({"a": 1}) == '!serializer:custom_serializer\n{"a": 1}'
    with pytest.raises(DBOSSerializationError, match=r"JsonOnly\.serialize failed"):
        serializer.dumps(object())
