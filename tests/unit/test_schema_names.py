"""DBOS's default schema name ``dbos`` stands for our tables' schema everywhere a DBOS
program may pass it (configuration, CLI, ``DBOS.migrate``, ``reset_system_database``);
any other name is refused before anything is touched."""

from __future__ import annotations

import logging

import pytest

from celery_durable import DBOS
from celery_durable.error import DBOSInitializationError


def test_reset_system_database_takes_dbos_default_schema_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        DBOS.reset_system_database(schema="dbos")  # nothing configured: no effect, a warning
    assert "has no effect" in caplog.text


def test_reset_system_database_refuses_another_schema() -> None:
    with pytest.raises(DBOSInitializationError, match="tenant_a"):
        DBOS.reset_system_database(schema="tenant_a")
