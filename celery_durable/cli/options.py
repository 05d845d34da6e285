"""Options shared by the commands: connection settings from flags or the environment."""

from __future__ import annotations

import os
from typing import Any

import click

from celery_durable.core import environment, forking
from celery_durable.core.records import WorkflowStatusString
from celery_durable.error import DBOSException, DBOSInitializationError
from celery_durable.service.tools import normalize_url


class OneLineError(click.ClickException):
    """Bad input: one line on stderr (``Error: ...``), exit status 2, no usage block."""

    exit_code = 2


def database_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--*database-url`` option's value, checked and normalised (``normalize_url``)."""
    if value is None:
        return None
    try:
        return normalize_url(value)
    except DBOSInitializationError as error:
        raise OneLineError(f"{param.opts[0]}: {error.message}") from None


class UpperChoice(click.Choice[str]):
    """One of a closed set of upper-case names, given in any case."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(value.upper() if isinstance(value, str) else value, param, ctx)


WORKFLOW_STATUS = UpperChoice([s.value for s in WorkflowStatusString])
SCHEDULE_STATUS = UpperChoice(["ACTIVE", "PAUSED"])


def fork_step(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """``fork --step``, by ``core.forking``'s rule (the dashboard's too)."""
    try:
        return forking.typed_start_step(value)
    except DBOSException as error:
        raise click.BadParameter(error.message) from None


database = click.option(
    "--database-url",
    envvar=environment.DATABASE_URL,
    required=True,
    callback=database_url,
    help=f"System database URL (or {environment.DATABASE_URL}).",
)
broker = click.option(
    "--broker-url",
    default=lambda: environment.broker_url(os.environ),
    help=f"Celery broker URL (or {environment.BROKER_URL}, or {environment.CELERY_BROKER_URL}).",
)
as_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def require_broker(broker_url: str | None) -> str:
    if not broker_url:
        raise click.ClickException(
            f"No broker: pass --broker-url or set {environment.BROKER_URL} or "
            f"{environment.CELERY_BROKER_URL}"
        )
    return broker_url
