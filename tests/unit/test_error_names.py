"""``celery_durable.error`` under DBOS Transact 3.4's names: every error class of
``dbos._error`` importable, ``DBOSErrorCode`` the enum it is in 3.4 (our older uses of
it still working), and each new class surviving a checkpoint and a pickle."""

from __future__ import annotations

import enum
import pickle

import pytest

import celery_durable.error as errors
from bench.dbos_api import load_snapshot
from celery_durable.core.serialization import JsonSerializer

DBOS_ERROR_NAMES = sorted(
    entry["name"] for entry in load_snapshot()["items"] if entry["section"] == "dbos.error"
)


@pytest.mark.parametrize("name", DBOS_ERROR_NAMES)
def test_every_dbos_error_name_is_importable(name: str) -> None:
    assert hasattr(errors, name), f"celery_durable.error lacks DBOS's {name}"


def test_the_error_code_is_dbos_3_4s_enum() -> None:
    codes = next(
        entry["members"]
        for entry in load_snapshot()["items"]
        if entry["section"] == "dbos.error" and entry["name"] == "DBOSErrorCode"
    )
    assert issubclass(errors.DBOSErrorCode, enum.Enum)
    assert {code.name: code.value for code in errors.DBOSErrorCode} == codes
    # DBOS's spelling and ours (an int) both hold; messages keep the bare number.
    refused = errors.DBOSNotAuthorizedError("no")
    assert refused.dbos_error_code == errors.DBOSErrorCode.NotAuthorized.value == 8
    assert refused.dbos_error_code == errors.DBOSErrorCode.NotAuthorized
    assert type(refused.dbos_error_code) is int
    assert str(refused) == "DBOS Error 8: no"


NEW_ERRORS = [
    errors.DBOSQueryTimeoutError(2.5),
    errors.DBOSRecoveryError("wf-1", "gone"),
    errors.MaxRecoveryAttemptsExceededError("wf-1", 3),
    errors.DBOSStepTimeoutError("charge", 1.5),
    errors.DBOSStepNondeterminismError("wf-1", 4),
    errors.DBOSPatchNondeterminismError("wf-1", "v2", "recorded v1"),
    errors.DBOSStreamNondeterminismError("wf-1", "progress"),
    errors.DBOSWorkflowIDInUseError("wf-1", "PENDING", "checkout"),
    errors.DBOSWorkflowCancelledError("wf-1 was cancelled"),
    errors.DBOSWorkflowConflictIDError("wf-1"),
]


@pytest.mark.parametrize("error", NEW_ERRORS, ids=lambda error: type(error).__name__)
def test_new_errors_survive_a_checkpoint_and_a_pickle(error: BaseException) -> None:
    for rebuilt in (
        JsonSerializer().loads(JsonSerializer().dumps(error)),
        pickle.loads(pickle.dumps(error)),
    ):
        assert type(rebuilt) is type(error)
        assert str(rebuilt) == str(error)
        assert str(error).startswith("DBOS Error ")


def test_signals_pass_through_except_exception_as_in_dbos() -> None:
    assert not issubclass(errors.DBOSWorkflowCancelledError, Exception)
    assert issubclass(errors.DBOSWorkflowCancelledError, errors.DBOSBaseException)
    with pytest.raises(errors.DBOSWorkflowConflictIDError):
        try:
            raise errors.DBOSWorkflowConflictIDError("wf-1")
        except Exception:  # does not catch it
            pytest.fail("a DBOSBaseException was caught by except Exception")


def test_dbos_names_for_errors_we_had_under_another_name() -> None:
    assert (
        errors.DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded
        is errors.DBOSWorkflowMaxRecoveryAttemptsExceededError
    )
    assert errors.is_workflow_id_in_use_error(errors.DBOSWorkflowIDInUseError("w", "S", "n"))
    assert not errors.is_workflow_id_in_use_error(errors.DBOSNotAuthorizedError("no"))
