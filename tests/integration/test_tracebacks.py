"""Recorded tracebacks: written with a raised error, bounded, and kept through decoding
without changing the error that replay raises."""

from __future__ import annotations

import base64
import pickle
import traceback

import pytest

from celery_durable.core.serialization import JsonSerializer, PickleSerializer, Serializer
from celery_durable.core.tracebacks import CUT_MARK, LIMIT_CHARS, recorded_traceback
from celery_durable.dashboard import documents
from celery_durable.error import DBOSMaxStepRetriesExceeded, RecordedError
from tests.integration.test_serialization import CustomError

SERIALIZERS = [JsonSerializer(), PickleSerializer()]


def _charge_card(code: int) -> None:
    raise CustomError(code, "card declined")


def _raised(code: int = 7) -> CustomError:
    try:
        _charge_card(code)
    except CustomError as error:
        return error
    raise AssertionError("_charge_card did not raise")


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=["json", "pickle"])
def test_a_raised_error_keeps_its_traceback_and_replays_unchanged(serializer: Serializer) -> None:
    error = _raised()
    rebuilt = serializer.loads(serializer.dumps(error))
    assert type(rebuilt) is CustomError and rebuilt.args == (7, "card declined")
    assert str(rebuilt) == str(error) and repr(rebuilt) == repr(error) and rebuilt.code == 7
    text = recorded_traceback(rebuilt)
    assert text is not None and text.startswith("Traceback (most recent call last):")
    assert "in _charge_card" in text and 'raise CustomError(code, "card declined")' in text
    # Recorded again (a rewritten attempt log), it keeps the first text, not a new one.
    again = serializer.loads(serializer.dumps([{"error": rebuilt}]))[0]["error"]
    assert recorded_traceback(again) == text
    assert recorded_traceback(error) is None  # the caller's exception is left alone


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=["json", "pickle"])
def test_each_attempt_of_max_step_retries_keeps_its_own(serializer: Serializer) -> None:
    errors: list[BaseException] = [_raised(1), _raised(2)]
    rebuilt = serializer.loads(serializer.dumps(DBOSMaxStepRetriesExceeded("charge", 2, errors)))
    assert isinstance(rebuilt, DBOSMaxStepRetriesExceeded)
    texts = [recorded_traceback(item) for item in rebuilt.errors]
    assert all(text is not None and "in _charge_card" in text for text in texts)
    assert recorded_traceback(rebuilt) is None  # built, never raised: nothing to record


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=["json", "pickle"])
def test_an_error_never_raised_records_no_traceback(serializer: Serializer) -> None:
    assert recorded_traceback(serializer.loads(serializer.dumps(ValueError("x")))) is None
    assert '"traceback"' not in JsonSerializer().dumps(ValueError("x"))


def test_a_record_written_before_tracebacks_still_decodes() -> None:
    old = (
        '{"__cd__":"exception","type":"tests.integration.test_serialization:CustomError",'
        '"args":[3,"d"],"message":"(3, \'d\')"}'
    )
    rebuilt = JsonSerializer().loads(old)
    assert type(rebuilt) is CustomError and rebuilt.args == (3, "d") and rebuilt.code == 3
    assert recorded_traceback(rebuilt) is None
    assert documents.error(rebuilt, True) == {
        "type": "CustomError",
        "message": "(3, 'd')",
        "traceback": None,
    }
    gone = JsonSerializer().loads(
        old.replace("tests.integration.test_serialization:CustomError", "gone:X")
    )
    assert isinstance(gone, RecordedError) and recorded_traceback(gone) is None
    # A checkpoint pickled before tracebacks were kept, as plain pickle wrote it.
    pickled = "!pickle:" + base64.b64encode(pickle.dumps(_raised())).decode("ascii")
    from_pickle = PickleSerializer().loads(pickled)
    assert type(from_pickle) is CustomError and recorded_traceback(from_pickle) is None


def test_a_recorded_error_rebuilt_as_recorded_error_keeps_its_traceback() -> None:
    text = (
        JsonSerializer()
        .dumps(_raised())
        .replace("tests.integration.test_serialization", "gone.module")
    )
    rebuilt = JsonSerializer().loads(text)
    assert isinstance(rebuilt, RecordedError)
    assert rebuilt.original_message == "(7, 'card declined')"
    assert "in _charge_card" in (recorded_traceback(rebuilt) or "")


def _chain_of(layers: int) -> RuntimeError:
    error: RuntimeError | None = None
    for layer in range(layers):
        try:
            raise RuntimeError(f"layer {layer}") from error
        except RuntimeError as raised:
            error = raised
    assert error is not None
    return error


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=["json", "pickle"])
def test_a_long_traceback_is_cut_to_its_end(serializer: Serializer) -> None:
    error = _chain_of(300)
    full = "".join(traceback.format_exception(error))
    assert len(full) > 5 * LIMIT_CHARS
    text = recorded_traceback(serializer.loads(serializer.dumps(error)))
    assert text is not None
    mark, _, kept = text.partition("\n")
    # The end is kept from a line's start, after a line saying how much was cut.
    assert f"{mark}\n" == CUT_MARK.format(len(full) - len(kept))
    assert LIMIT_CHARS - 200 < len(kept) <= LIMIT_CHARS
    assert full.endswith(kept) and full[-len(kept) - 1] == "\n"
    assert kept.endswith("RuntimeError: layer 299\n") and "layer 0\n" not in kept
