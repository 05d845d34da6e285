"""Options shared by the commands: connection settings from flags or the environment."""

from __future__ import annotations

import os

import click

from celery_durable.core import environment

database = click.option(
    "--database-url",
    envvar=environment.DATABASE_URL,
    required=True,
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
