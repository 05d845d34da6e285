"""Every key of DBOS Transact 3.4's ``DBOSConfig`` is honoured, raises naming what to
use instead, or (when it cannot apply to a Celery deployment) warns once naming it."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from celery import Celery

from celery_durable.error import DBOSInitializationError
from celery_durable.integration.config_keys import (
    NOT_APPLICABLE,
    REPLACED,
    ConfigKeyWarning,
)
from celery_durable.integration.process import PATCHING_VERSION, validated_config

# DBOS Transact 3.4's DBOSConfig keys (dbos/_dbos_config.py), in its order.
DBOS_3_4_KEYS = [
    "name",
    "system_database_url",
    "sys_db_pool_size",
    "sys_db_polling_concurrency",
    "db_engine_kwargs",
    "sys_db_idle_transaction_timeout_sec",
    "log_level",
    "otlp_log_level",
    "console_log_level",
    "otlp_traces_endpoints",
    "otlp_logs_endpoints",
    "otlp_attributes",
    "application_version",
    "executor_id",
    "dbos_system_schema",
    "enable_otlp",
    "system_database_engine",
    "conductor_key",
    "conductor_url",
    "conductor_executor_metadata",
    "conductor_metadata_only_mode",
    "transact_enterprise_key",
    "auto_upgrade",
    "auto_upgrade_interval_sec",
    "auto_upgrade_grace_sec",
    "serializer",
    "enable_patching",
    "use_listen_notify",
    "sharding",
    "run_migrations",
    "max_executor_threads",
    "notification_listener_polling_interval_sec",
    "notification_coalesce_sec",
    "observability_query_timeout_sec",
    "scheduler_polling_interval_sec",
    "kafka_queue_polling_interval_sec",
    "otel_attribute_format",
]

HONOURED = {
    "name": "app",
    "system_database_url": "postgresql://localhost/app",
    "sys_db_pool_size": 3,
    "log_level": "INFO",
    "application_version": "v1",
    "executor_id": "executor-1",
    "serializer": "json",
    "enable_patching": False,
    "use_listen_notify": True,
    "run_migrations": False,
    "max_executor_threads": 4,
    "observability_query_timeout_sec": 5.0,
}

APP = Celery("config-keys", set_as_current=False)


def _validated(**extra: Any) -> dict[str, Any]:
    return dict(validated_config(APP, {"name": "app", **extra}))  # type: ignore[typeddict-item]


def test_every_dbos_key_is_in_exactly_one_group() -> None:
    groups = [set(HONOURED), set(REPLACED), set(NOT_APPLICABLE)]
    for key in DBOS_3_4_KEYS:
        assert sum(key in group for group in groups) == 1, key
    assert set().union(*groups) == set(DBOS_3_4_KEYS)


def test_honoured_keys_are_accepted_without_a_word() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = _validated(**HONOURED)
    assert merged["max_executor_threads"] == 4
    assert merged["run_migrations"] is False


def test_enable_patching_pins_the_application_version() -> None:
    assert _validated(enable_patching=True)["application_version"] == PATCHING_VERSION
    assert _validated(enable_patching=True, application_version="v2")["application_version"] == "v2"


@pytest.mark.parametrize("key", sorted(REPLACED))
def test_a_replaced_key_raises_naming_what_to_use(key: str) -> None:
    with pytest.raises(DBOSInitializationError, match=key) as raised:
        _validated(**{key: 1})
    assert REPLACED[key] in str(raised.value)


@pytest.mark.parametrize("key", sorted(NOT_APPLICABLE))
def test_a_key_that_cannot_apply_warns_once_naming_it(key: str) -> None:
    with pytest.warns(ConfigKeyWarning) as caught:
        _validated(**{key: "value"})
    assert len(caught) == 1
    assert repr(key) in str(caught[0].message)


def test_dbos_defaults_that_ask_for_nothing_are_accepted() -> None:
    """DBOS's own test configuration says ``sharding: False``: that asks for nothing we
    lack, so it neither raises nor warns (``sharding: True`` still raises)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _validated(sharding=False, auto_upgrade=False, enable_otlp=False)
        _validated(dbos_system_schema="dbos")  # DBOS's default name for the same tables
        _validated(dbos_system_schema="celery_durable")
    with pytest.raises(DBOSInitializationError, match="sharding"):
        _validated(sharding=True)
    with pytest.raises(DBOSInitializationError, match="sharding"):
        _validated(sharding=0)  # a falsy value of another type is not DBOS's default
    with pytest.raises(DBOSInitializationError, match="dbos_system_schema"):
        _validated(dbos_system_schema="tenant_a")


def test_none_counts_as_absent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = _validated(
            conductor_key=None, system_database_engine=None, enable_otlp=None, sys_db_pool_size=None
        )
    assert merged["sys_db_pool_size"] == 5  # the default, not None


def test_use_listen_notify_false_is_accepted_without_a_warning() -> None:
    """Honoured (nothing LISTENs: test_porting checks it), so nothing to warn of."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = _validated(use_listen_notify=False)
    assert merged["use_listen_notify"] is False


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"serializer": object()}, '"json"'),
        ({"max_executor_threads": 0}, "positive integer"),
        ({"observability_query_timeout_sec": float("inf")}, "must be a finite number"),
        ({"observability_query_timeout_sec": "5"}, "must be a finite number"),
        ({"sys_db_pool_sise": 5}, "Unknown configuration key 'sys_db_pool_sise'"),
    ],
)
def test_values_that_cannot_be_honoured_raise(extra: dict[str, Any], words: str) -> None:
    with pytest.raises(DBOSInitializationError, match=words):
        _validated(**extra)
