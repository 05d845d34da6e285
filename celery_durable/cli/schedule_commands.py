"""``celery-durable schedules ...``: list, pause, resume, trigger and backfill cron
schedules.

Listing, pausing and resuming need only the database. Triggering and backfilling
create workflows by name; with CELERY_DURABLE_IMPORTS set, the app those modules
configure routes them (its broker and ``task_routes``), otherwise a plain app on
--broker-url.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from celery import Celery

from celery_durable.api.dbos import DBOS
from celery_durable.api.dbos_schedules import WorkflowSchedule
from celery_durable.cli import options
from celery_durable.cli.admin import _imported_app
from celery_durable.core.serialization import to_jsonable
from celery_durable.error import DBOSException
from celery_durable.service.schedules import ScheduleService
from celery_durable.service.wiring import command_service


@contextmanager
def _schedules(
    database_url: str, broker_url: str | None, *, publishes: bool
) -> Iterator[ScheduleService]:
    try:
        app = _imported_app() if publishes else None
        if app is None:
            broker = options.require_broker(broker_url) if publishes else "memory://"
            app = Celery("celery_durable_cli", broker=broker)
        service = command_service(app, database_url, registry=DBOS._registry, queues=DBOS._queues)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    try:
        yield service.schedules
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    finally:
        service.release()


def _found(done: bool, name: str) -> None:
    if not done:
        raise click.ClickException(f"Schedule '{name}' does not exist")


def _line(schedule: WorkflowSchedule) -> str:
    return (
        f"{schedule['schedule_name']}  {schedule['status']}  {schedule['schedule']}  "
        f"{schedule['workflow_name']}  next {schedule['next_fire_at']}  "
        f"last {schedule['last_fired_at'] or '-'}"
    )


def _emit(as_json: bool, document: Any, text: str) -> None:
    click.echo(json.dumps(to_jsonable(document), indent=2) if as_json else text)


@click.group()
def schedules() -> None:
    """List and operate cron schedules (fired by the workers themselves)."""


@schedules.command("list")
@options.database
@click.option("--status", multiple=True, type=options.SCHEDULE_STATUS, help="Status (repeatable).")
@click.option("--workflow", "workflow_name", multiple=True, help="Workflow name.")
@click.option("--prefix", multiple=True, help="Schedule name prefix.")
@options.as_json
def list_schedules(
    database_url: str,
    status: tuple[str, ...],
    workflow_name: tuple[str, ...],
    prefix: tuple[str, ...],
    as_json: bool,
) -> None:
    """Schedules, by name."""
    with _schedules(database_url, None, publishes=False) as schedules:
        found = schedules.find(
            status=list(status) or None,
            workflow_name=list(workflow_name) or None,
            schedule_name_prefix=list(prefix) or None,
        )
    _emit(as_json, found, "\n".join(_line(s) for s in found) or "No schedules")


@schedules.command("pause")
@options.database
@click.argument("name")
@options.as_json
def pause(database_url: str, name: str, as_json: bool) -> None:
    """Stop a schedule firing."""
    with _schedules(database_url, None, publishes=False) as schedules:
        _found(schedules.pause(name), name)
    _emit(as_json, {"schedule_name": name, "status": "PAUSED"}, f"Paused {name}")


@schedules.command("resume")
@options.database
@click.argument("name")
@options.as_json
def resume(database_url: str, name: str, as_json: bool) -> None:
    """Fire a paused schedule again, from its next tick."""
    with _schedules(database_url, None, publishes=False) as schedules:
        _found(schedules.resume(name), name)
    _emit(as_json, {"schedule_name": name, "status": "ACTIVE"}, f"Resumed {name}")


@schedules.command("trigger")
@options.database
@options.broker
@click.argument("name")
@options.as_json
def trigger(database_url: str, broker_url: str | None, name: str, as_json: bool) -> None:
    """Start the schedule's workflow now; prints its id."""
    with _schedules(database_url, broker_url, publishes=True) as schedules:
        workflow_id = schedules.trigger(name).workflow_id
    _emit(as_json, {"workflow_id": workflow_id}, workflow_id)


@schedules.command("backfill")
@options.database
@options.broker
@click.argument("name")
@click.option("--start", required=True, help="Exclusive start (ISO-8601; naive is UTC).")
@click.option("--end", required=True, help="Exclusive end (ISO-8601; naive is UTC).")
@options.as_json
def backfill(
    database_url: str, broker_url: str | None, name: str, start: str, end: str, as_json: bool
) -> None:
    """Start every tick in (start, end) that has not run; prints their ids."""
    try:
        window = (dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    except ValueError as error:
        raise click.ClickException(f"--start and --end must be ISO-8601: {error}") from error
    with _schedules(database_url, broker_url, publishes=True) as schedules:
        ids = [handle.workflow_id for handle in schedules.backfill(name, *window)]
    _emit(as_json, {"workflow_ids": ids}, "\n".join(ids) or "No ticks in that window")
