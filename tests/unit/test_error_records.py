"""Errors recorded before ``celery_durable.error`` became a package still load, and the
package records each error exactly as the one module did.

A recorded error names its class by module and name: a JSON checkpoint's ``type`` is
``celery_durable.error:<name>``, a pickle's global is ``celery_durable.error <name>``.
``tests/unit/data/error_records.json`` holds what ``celery_durable/error.py`` (one
module, before the split) wrote for one instance of every error class: each still loads
as its own class, and each is what the package writes today (a release before the split,
rolled back to, reads what this one wrote). Regenerate it only if a record's format
changes on purpose: ``python -m tests.unit.test_error_records``.
"""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest

import celery_durable.error as errors
from celery_durable.core.serialization import JsonSerializer, PickleSerializer

RECORDS = Path(__file__).parent / "data" / "error_records.json"

SAMPLES: dict[str, BaseException] = {
    "DBOSException": errors.DBOSException("plain", 3),
    "DBOSException without a code": errors.DBOSException("plain"),
    "DBOSBaseException": errors.DBOSBaseException("signal", 10),
    "DBOSInitializationError": errors.DBOSInitializationError("not configured"),
    "DBOSSystemDatabaseError": errors.DBOSSystemDatabaseError("refused"),
    "DBOSSchemaMissingError": errors.DBOSSchemaMissingError("no tables"),
    "DBOSWorkflowFunctionNotFoundError": errors.DBOSWorkflowFunctionNotFoundError("checkout"),
    "DBOSNonExistentWorkflowError": errors.DBOSNonExistentWorkflowError(
        "wf-1", "`send` destination"
    ),
    "DBOSNotAuthorizedError": errors.DBOSNotAuthorizedError("no role"),
    "DBOSConflictingWorkflowError": errors.DBOSConflictingWorkflowError("wf-3", "other"),
    "DBOSMaxStepRetriesExceeded": errors.DBOSMaxStepRetriesExceeded(
        "charge", 3, [ValueError("boom")]
    ),
    "DBOSCeleryTaskError": errors.DBOSCeleryTaskError("tasks.add", "t-1", "KeyError", "'x'"),
    "DBOSUnexpectedStepError": errors.DBOSUnexpectedStepError("wf-1", 2, "pay", "ship"),
    "DBOSSerializationError": errors.DBOSSerializationError("not JSON"),
    "DBOSAwaitedWorkflowCancelledError": errors.DBOSAwaitedWorkflowCancelledError("wf-1"),
    "DBOSWorkflowMaxRecoveryAttemptsExceededError": (
        errors.DBOSWorkflowMaxRecoveryAttemptsExceededError("wf-1")
    ),
    "DBOSQueueDeduplicatedError": errors.DBOSQueueDeduplicatedError("wf-1", "q", "d-1"),
    "DBOSWorkflowIDInUseError": errors.DBOSWorkflowIDInUseError("wf-1", "PENDING", "checkout"),
    "DBOSStreamTimeoutError": errors.DBOSStreamTimeoutError("wf-1", "progress", 1.5),
    "RecordedError": errors.RecordedError("shop.errors:OutOfStock", "none left"),
    "DBOSQueryTimeoutError": errors.DBOSQueryTimeoutError(2.5),
    "DBOSRecoveryError": errors.DBOSRecoveryError("wf-1", "gone"),
    "MaxRecoveryAttemptsExceededError": errors.MaxRecoveryAttemptsExceededError("wf-1", 3),
    "DBOSStepTimeoutError": errors.DBOSStepTimeoutError("charge", 1.5),
    "DBOSStepNondeterminismError": errors.DBOSStepNondeterminismError("wf-1", 4),
    "DBOSPatchNondeterminismError": errors.DBOSPatchNondeterminismError("wf-1", "v2", "v1"),
    "DBOSStreamNondeterminismError": errors.DBOSStreamNondeterminismError("wf-1", "progress"),
    "DBOSWorkflowCancelledError": errors.DBOSWorkflowCancelledError("wf-1 was cancelled"),
    "DBOSWorkflowConflictIDError": errors.DBOSWorkflowConflictIDError("wf-1"),
}


def _records() -> dict[str, dict[str, str]]:
    """Each sample's JSON checkpoint text and pickle (base64), as this code writes them."""
    return {
        name: {
            "json": JsonSerializer().dumps(error),
            "pickle": base64.b64encode(pickle.dumps(error, protocol=4)).decode("ascii"),
        }
        for name, error in SAMPLES.items()
    } | {
        "DBOSErrorCode": {
            "json": JsonSerializer().dumps(int(errors.DBOSErrorCode.NotAuthorized)),
            "pickle": base64.b64encode(
                pickle.dumps(errors.DBOSErrorCode.NotAuthorized, protocol=4)
            ).decode("ascii"),
        }
    }


def _recorded() -> dict[str, dict[str, str]]:
    recorded: dict[str, dict[str, str]] = json.loads(RECORDS.read_text())
    return recorded


def test_every_error_class_has_a_recorded_sample() -> None:
    classes = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type) and name != "DBOSErrorCode"
    }
    sampled = {type(error).__name__ for error in SAMPLES.values()}
    # DBOS's other name for a class is the same class.
    assert classes - sampled == {"DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded"}
    assert set(_recorded()) == {*SAMPLES, "DBOSErrorCode"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_error_recorded_by_the_one_module_loads_as_its_class(name: str) -> None:
    error = SAMPLES[name]
    old = _recorded()[name]
    for rebuilt in (
        JsonSerializer().loads(old["json"]),
        PickleSerializer().loads(old["json"]),
        pickle.loads(base64.b64decode(old["pickle"])),
    ):
        assert type(rebuilt) is type(error)
        assert str(rebuilt) == str(error)
        assert repr(rebuilt.__reduce__()[1]) == repr(error.__reduce__()[1])


def test_the_error_code_pickled_by_the_one_module_loads() -> None:
    code = pickle.loads(base64.b64decode(_recorded()["DBOSErrorCode"]["pickle"]))
    assert code is errors.DBOSErrorCode.NotAuthorized


def test_errors_are_recorded_as_the_one_module_recorded_them() -> None:
    assert _records() == _recorded()
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert value.__module__ == "celery_durable.error", name


if __name__ == "__main__":
    RECORDS.parent.mkdir(exist_ok=True)
    RECORDS.write_text(json.dumps(_records(), indent=1, sort_keys=True) + "\n")
