"""The harness of ``python -m bench dbos_suite``, without DBOS and without the network:
the import shim, the conftest adaptations, and how outcomes and internals are read."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import dbos_suite, dbos_suite_conftest


def test_the_shim_re_exports_celery_durable_and_fails_only_where_used(tmp_path: Path) -> None:
    (tmp_path / "dbos").mkdir()
    shutil.copy(dbos_suite.SHIM, tmp_path / "dbos" / "__init__.py")
    script = textwrap.dedent(
        """
        import celery_durable, celery_durable.error
        from dbos import DBOS, Queue, error
        from dbos._core import _execute_workflow_wthread
        from dbos._error import DBOSException
        from dbos._sys_db import SystemDatabase, WorkflowStatusString
        import dbos._schemas.system_database as schema
        from dbos import _workflow_commands

        assert DBOS is celery_durable.DBOS and Queue is celery_durable.Queue
        assert error is celery_durable.error and DBOSException is error.DBOSException
        assert WorkflowStatusString is celery_durable.WorkflowStatusString

        class Subclass(SystemDatabase):  # a placeholder can be subclassed
            pass

        for use in (
            lambda: _execute_workflow_wthread(),
            lambda: SystemDatabase.create,
            lambda: schema.SystemSchema.workflow_status,
        ):
            try:
                use()
            except NotImplementedError as absent:
                assert "absent in celery_durable" in str(absent)
            else:
                raise AssertionError("a placeholder worked")
        _workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC = 0.1  # a module: settable
        print("ok")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout.strip() == "ok", completed.stderr[-2000:]


def test_every_adaptation_applies_once_or_the_run_stops() -> None:
    conftest = "\n".join(adaptation.old for adaptation in dbos_suite_conftest.ADAPTATIONS)
    adapted = dbos_suite_conftest.adapt(conftest)
    for adaptation in dbos_suite_conftest.ADAPTATIONS:
        assert adaptation.new in adapted
    assert adapted.endswith(dbos_suite_conftest.HELPERS)
    first = dbos_suite_conftest.ADAPTATIONS[0]
    with pytest.raises(ValueError, match="found 0 times"):
        dbos_suite_conftest.adapt(conftest.replace(first.old, ""))


def test_tests_reaching_into_dbos_internals_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "test_sample.py"
    path.write_text(
        textwrap.dedent(
            """
            from dbos import DBOS
            from dbos._error import DBOSException
            from dbos._utils import GlobalParams
            from tests.conftest import set_workflow_status

            def peek(dbos):
                return dbos._sys_db

            def test_public(dbos):
                @DBOS.workflow()
                def test_inner() -> None:
                    raise DBOSException("public: dbos.error has it")

            def test_sys_db(dbos):
                dbos._sys_db.engine

            def test_private_name():
                GlobalParams.app_version = "v"

            def test_helper(dbos):
                set_workflow_status(None, "id", "PENDING")

            def test_own_helper(dbos):
                peek(dbos)
            """
        )
    )
    assert dbos_suite.internal_tests(path) == {
        "test_sys_db",
        "test_private_name",
        "test_helper",
        "test_own_helper",
    }


def test_outcomes_of_a_killed_file_come_from_its_verbose_lines() -> None:
    log = "\n".join(
        [
            "tests/test_x.py::test_a PASSED                                  [ 25%]",
            "tests/test_x.py::test_b[1] FAILED                               [ 50%]",
            "tests/test_x.py::test_b[1] ERROR                                [ 50%]",
            "tests/test_x.py::TestK::test_c SKIPPED (why)                    [ 75%]",
            "tests/test_x.py::test_d ERROR                                   [100%]",
        ]
    )
    assert dbos_suite.read_verbose_log(log) == {
        "::test_a": "passed",
        "::test_b[1]": "failed",
        "TestK::test_c": "skipped",
        "::test_d": "errored",
    }
