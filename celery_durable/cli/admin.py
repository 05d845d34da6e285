"""``celery-durable migrate`` and ``celery-durable recover``."""

from __future__ import annotations

import importlib
import os

import click
from celery import Celery

from celery_durable.api.dbos import DBOS
from celery_durable.cli import options
from celery_durable.core import environment
from celery_durable.error import DBOSException
from celery_durable.service.tools import migrate_databases, recover_now, redact


@click.command()
@options.database
@click.option(
    "--app-database-url",
    envvar=environment.APP_DATABASE_URL,
    callback=options.database_url,
    help="Application database of @DBOS.transaction (default: the system database).",
)
def migrate(database_url: str, app_database_url: str | None) -> None:
    """Create or upgrade the tables (idempotent)."""
    try:
        version = migrate_databases(database_url, app_database_url)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{redact(database_url)}: schema version {version}")


@click.command()
@options.database
@options.broker
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a delivery may be late before its workflow is published again.",
)
def recover(database_url: str, broker_url: str | None, grace: float) -> None:
    """Publish again the workflows that should be running but are not.

    Workflows whose owner died, whose delivery is overdue, or whose parked delay has
    come due. Workers do this by themselves every recovery interval; this runs one
    sweep now (none while a worker's sweep runs). With CELERY_DURABLE_IMPORTS set, the
    app those modules configure is used (its broker settings and routing); otherwise a
    plain app on --broker-url.
    """
    app = _imported_app() or Celery("celery_durable_cli", broker=options.require_broker(broker_url))
    try:
        redispatches = recover_now(database_url, app, grace_seconds=grace)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    for redispatch in redispatches:
        click.echo(
            f"{redispatch.workflow_uuid}  {redispatch.name}  "
            f"generation {redispatch.generation}: {redispatch.reason}"
        )
    click.echo(f"Published {len(redispatches)} workflow(s) again")


def _imported_app() -> Celery | None:
    """Imports CELERY_DURABLE_IMPORTS; returns the Celery app of the DBOS they set up."""
    modules = environment.imports(os.environ)
    if not modules:
        return None
    for module in modules:
        importlib.import_module(module)
    service = DBOS._current_service()
    if service is None:
        raise click.ClickException(
            f"{environment.IMPORTS} ({', '.join(modules)}) configured no DBOS"
        )
    return service.celery
