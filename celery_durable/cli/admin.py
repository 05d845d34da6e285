"""``celery-durable migrate`` and ``celery-durable recover``."""

from __future__ import annotations

import importlib
import os
from typing import NoReturn

import click
from celery import Celery

from celery_durable.api.dbos import DBOS
from celery_durable.cli import dbos_config, dbos_options, options
from celery_durable.core import environment
from celery_durable.error import DBOSException
from celery_durable.service.tools import (
    SYSTEM_SCHEMA,
    migrate_databases,
    migration_script,
    recover_now,
    redact,
    role_grants,
)


@click.command(help="Create or upgrade the tables (idempotent).")
@dbos_options.sys_db_option("--database-url")
@click.option(
    "--app-database-url",
    envvar=environment.APP_DATABASE_URL,
    callback=options.database_url,
    help="Application database of @DBOS.transaction (default: the system database).",
)
@click.option(
    "--app-role",
    "-r",
    "application_role",
    help="Grant this role (the one the application runs as) the use of the tables.",
)
@dbos_options.schema
@click.option(
    "--print-migrations",
    metavar="[all|NUMBER]",
    help="Print the SQL of all migrations, or of those from NUMBER on, instead of running them.",
)
@click.option(
    "--print-user-role",
    is_flag=True,
    help="Print the SQL granting --app-role the use of the tables instead of running it.",
)
@click.option("--sharding", is_flag=True, help="Not supported: there are no sharded databases.")
def migrate(
    system_database_url: str | None,
    app_database_url: str | None,
    application_role: str | None,
    schema: str | None,
    print_migrations: str | None,
    print_user_role: bool,
    sharding: bool,
) -> None:
    """Create or upgrade the tables (idempotent)."""
    if sharding:
        _fail("--sharding: sharded system databases are not supported by celery_durable")
    if print_migrations is not None or print_user_role:
        _print_sql(print_migrations, print_user_role, application_role)
        return
    database_url = dbos_options.resolve_url(system_database_url)
    try:
        version = migrate_databases(
            database_url, app_database_url, application_role=application_role
        )
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{redact(database_url)}: schema version {version}")
    dbos_config.run_migrate_commands(dbos_config.load())


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise click.exceptions.Exit(code=1)


def _print_sql(print_migrations: str | None, print_user_role: bool, role: str | None) -> None:
    """``--print-migrations`` / ``--print-user-role``: SQL on stdout, no database touched."""
    if print_migrations is not None and print_user_role:
        _fail("--print-user-role cannot be combined with --print-migrations")
    if print_user_role:
        if role is None:
            _fail("--print-user-role requires --app-role")
        click.echo(f"-- Permissions on the {SYSTEM_SCHEMA} schema")
        for statement in role_grants(role):
            click.echo(f"{statement};")
        return
    try:
        first = 1 if print_migrations == "all" else int(print_migrations or "")
    except ValueError:
        _fail(
            f"Invalid --print-migrations value '{print_migrations}': expected 'all' "
            "or a migration number"
        )
    try:
        click.echo(migration_script(first))
    except ValueError as error:
        _fail(str(error))


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
