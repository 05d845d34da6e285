"""What ``apply_schedules`` takes, and the checks of DBOS Transact 3.4 on it.

``ScheduleInput`` is ``DBOS.apply_schedules``'s (the workflow as a function),
``ClientScheduleInput`` ``DBOSClient.apply_schedules``'s and ``create_schedule``'s (the
workflow by name, from a process without its code). Both are DBOS's TypedDicts, key for
key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from celery_durable.error import DBOSException
from celery_durable.service.management import refuse_shard_key

__all__ = [
    "ClientScheduleInput",
    "ScheduleInput",
    "missing_field",
    "refuse_class_name",
    "refuse_owner",
]


class ScheduleInput(TypedDict, total=False):
    """One schedule of ``DBOS.apply_schedules`` (``schedule_name``, ``workflow_fn`` and
    ``schedule`` are required)."""

    schedule_name: str
    workflow_fn: Callable[..., Any]
    schedule: str
    context: Any
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    shard_key: str | None


class ClientScheduleInput(TypedDict, total=False):
    """One schedule of ``DBOSClient.apply_schedules`` (``schedule_name``,
    ``workflow_name`` and ``schedule`` are required)."""

    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    context: Any
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None
    shard_key: str | None


def missing_field(entries: list[Any], required: tuple[str, ...]) -> None:
    """Raises ``DBOSException`` (DBOS's message) for the first entry that lacks a
    required key, before anything is written."""
    if not isinstance(entries, list):
        raise DBOSException(f"apply_schedules takes a list of schedules, not {entries!r}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise DBOSException(f"Schedule entry {index} is not a dict: {entry!r}")
        for field in required:
            if field not in entry:
                raise DBOSException(f"Schedule entry {index} is missing required field '{field}'")


def refuse_owner(application_name: str | None, shard_key: str | None) -> None:
    """A schedule's owning application and shard key: a celery_durable system database
    serves one application and is not sharded, so neither can be honoured."""
    refuse_shard_key(shard_key)
    if application_name is not None:
        raise DBOSException(
            "application_name is not supported: schedules have no owning application "
            "here (one system database serves one Celery app's fleet, and every worker "
            "with the workflow's code fires its schedules); omit it"
        )


def refuse_class_name(workflow_class_name: str | None) -> None:
    """A class-bound workflow named by its class: the schedule's runs would need the
    class's registered instance, which a schedule's row does not record here."""
    if workflow_class_name is not None:
        raise DBOSException(
            "workflow_class_name is not supported by schedules here: schedule a plain "
            "@DBOS.workflow() (module-level or a static method, named by its registered "
            "name in workflow_name) that calls the class's workflow"
        )
