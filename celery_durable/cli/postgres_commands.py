"""``celery-durable postgres start|stop``: a local PostgreSQL for development.

``dbos postgres start`` runs PostgreSQL in Docker; here it is the embedded PostgreSQL
(PostgreSQL's own binaries from the ``embedded`` extra) that a ``DBOS`` without a
``system_database_url`` uses, started so that it keeps running after the command
returns. Its data stays under ``CELERY_DURABLE_HOME`` (default ``~/.cache/celery_durable``).
"""

from __future__ import annotations

import click

from celery_durable.cli import dbos_config
from celery_durable.core import environment
from celery_durable.error import DBOSException
from celery_durable.service.tools import start_postgres, stop_postgres

DEFAULT_NAME = "celery_durable"

postgres = click.Group(
    name="postgres", help="Manage a local PostgreSQL (the embedded one; no Docker needed)"
)

_name = click.option(
    "--name",
    help=f"Whose server: an application's name (default: the name in "
    f"{dbos_config.CONFIG_FILE}, else {DEFAULT_NAME}). A DBOS(config) of that name "
    "without system_database_url uses the same server.",
)


def _server_name(name: str | None) -> str:
    if name:
        return name
    settings = dbos_config.load() or {}
    return str(settings.get("name") or DEFAULT_NAME)


@postgres.command(name="start", help="Start a local PostgreSQL; print its URL")
@_name
def pg_start(name: str | None) -> None:
    server = _server_name(name)
    try:
        url = start_postgres(server, keep_running=True)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"PostgreSQL for {server} is running: {url}")
    click.echo(f"Use it with -s/--sys-db-url, or: export {environment.DATABASE_URL}='{url}'")


@postgres.command(name="stop", help="Stop the local PostgreSQL (its data stays)")
@_name
def pg_stop(name: str | None) -> None:
    server = _server_name(name)
    try:
        stopped = stop_postgres(server)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Stopped PostgreSQL for {server}" if stopped else f"PostgreSQL for {server} is not running"
    )
