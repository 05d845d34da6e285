"""JSON checkpoints: exact round trips, exceptions rebuilt, pickle only by opt-in."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from celery_durable.core.serialization import JsonSerializer, PickleSerializer, make_serializer
from celery_durable.error import (
    DBOSMaxStepRetriesExceeded,
    DBOSSerializationError,
    RecordedError,
)

json = JsonSerializer()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "text",
        [1, [2, {"a": None}]],
        {"nested": {"list": [1, 2]}},
        dt.datetime(2026, 11, 24, 12, 30, 1, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 24, 12, 30),
        dt.date(2026, 11, 24),
        dt.time(12, 30, 15),
        dt.timedelta(days=2, seconds=5, microseconds=7),
        uuid.uuid4(),
        Decimal("12345.678901234567890"),
        b"\x00\x01binary\xff",
        (1, ("nested", "tuple")),
        {1: "int key", (2, 3): "tuple key"},
        {"__cd__": "a user key that looks like our tag"},
        {1, 2, 3},
        frozenset({"a"}),
    ],
)
def test_values_round_trip_exactly(value: Any) -> None:
    decoded = json.loads(json.dumps(value))
    assert decoded == value
    assert type(decoded) is type(value)


def test_unsupported_types_are_a_clear_error() -> None:
    with pytest.raises(DBOSSerializationError, match=r"builtins\.object is not serializable"):
        json.dumps({"x": object()})
    # As DBOS raises it: a ported program's ``except TypeError`` catches it.
    with pytest.raises(TypeError, match=r"builtins\.generator is not serializable"):
        json.dumps(x for x in "ab")


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code


def test_exceptions_are_rebuilt_as_their_own_class() -> None:
    rebuilt = json.loads(json.dumps(CustomError(4, "detail")))
    assert isinstance(rebuilt, CustomError)
    assert rebuilt.code == 4 and rebuilt.args == (4, "detail")
    builtin = json.loads(json.dumps(ConnectionError("down")))
    assert type(builtin) is ConnectionError and str(builtin) == "down"


def test_max_step_retries_exceeded_keeps_every_attempts_error() -> None:
    error = DBOSMaxStepRetriesExceeded("charge", 3, [ValueError("a"), CustomError(1, "b")])
    rebuilt = json.loads(json.dumps(error))
    assert isinstance(rebuilt, DBOSMaxStepRetriesExceeded)
    assert str(rebuilt) == "DBOS Error 7: Step charge has exceeded its maximum of 3 retries"
    assert rebuilt.step_name == "charge" and rebuilt.max_retries == 3
    assert [type(e) for e in rebuilt.errors] == [ValueError, CustomError]


def test_unknown_exception_classes_become_recorded_errors() -> None:
    text = json.dumps(ValueError("x")).replace("builtins:ValueError", "gone.module:Missing")
    rebuilt = json.loads(text)
    assert isinstance(rebuilt, RecordedError)
    assert rebuilt.type_name == "gone.module:Missing"
    assert rebuilt.original_message == "x"


def test_json_refuses_to_unpickle_and_pickle_is_opt_in() -> None:
    pickled = PickleSerializer().dumps(CustomError(1, "x"))
    with pytest.raises(DBOSSerializationError, match="Refusing to unpickle"):
        json.loads(pickled)
    assert isinstance(make_serializer("pickle").loads(pickled), CustomError)
    # A pickle-configured process still reads JSON checkpoints.
    assert make_serializer("pickle").loads(json.dumps({"a": 1})) == {"a": 1}
    with pytest.raises(DBOSSerializationError, match="Unknown serializer"):
        make_serializer("yaml")  # type: ignore[arg-type]


def test_an_error_class_is_rebuilt_only_from_a_module_imported_or_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import tabnanny

    recorded = JsonSerializer().dumps(tabnanny.NannyNag(3, "mixed tabs", "\tx"))
    monkeypatch.delitem(sys.modules, "tabnanny")  # as in a process that never imported it
    # Not imported, not allowed: read as RecordedError, and still not imported.
    read = JsonSerializer().loads(recorded)
    assert isinstance(read, RecordedError) and read.type_name == "tabnanny:NannyNag"
    assert "tabnanny" not in sys.modules
    # Listed in config["importable_error_modules"]: imported, rebuilt as its class.
    allowed = make_serializer("json", ["tabnanny"]).loads(recorded)
    assert type(allowed).__name__ == "NannyNag" and allowed.get_lineno() == 3
    assert "tabnanny" in sys.modules
    # Imported already (a worker has its workflows' modules): rebuilt as its class.
    assert type(JsonSerializer().loads(recorded)) is type(allowed)
