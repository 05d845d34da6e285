"""``config["enable_patching"]`` (deprecated in DBOS 3.4) still pins the application
version, and says it is deprecated on DBOS's logger, as DBOS does."""

from __future__ import annotations

import logging

import pytest
from celery import Celery

from celery_durable.integration.process import PATCHING_VERSION, validated_config


def test_enable_patching_pins_the_version_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dbos"):
        config = validated_config(
            Celery("patching", set_as_current=False), {"name": "app", "enable_patching": True}
        )
    assert config.get("application_version") == PATCHING_VERSION
    assert "enable_patching is deprecated" in caplog.text


def test_without_it_nothing_is_said(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dbos"):
        validated_config(Celery("plain", set_as_current=False), {"name": "app"})
    assert "enable_patching" not in caplog.text
