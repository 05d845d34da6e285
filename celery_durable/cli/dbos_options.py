"""The options of the commands that follow ``dbos``'s command line: the same spellings
(``-s/--sys-db-url``, ``--schema``), and DBOS's way of finding the system database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from celery_durable.cli import dbos_config, options
from celery_durable.core import environment
from celery_durable.error import DBOSInitializationError
from celery_durable.service.tools import SCHEMA_NAMES, SYSTEM_SCHEMA, normalize_url

_Command = TypeVar("_Command", bound=Callable[..., Any])


class DefaultEncoder(json.JSONEncoder):
    """JSON as ``dbos`` prints it: what JSON cannot hold (an exception, say) as str()."""

    def default(self, o: Any) -> str:
        return str(o)


def print_json(document: Any) -> None:
    """One line of JSON on stdout, as ``dbos workflow ...`` prints it."""
    click.echo(json.dumps(document, cls=DefaultEncoder))


def sys_db_option(*spellings: str) -> Callable[[_Command], _Command]:
    """The system database option under every name: ``dbos``'s ``-s/--sys-db-url`` and
    our ``--database-url``; ``spellings`` first (the name its errors use)."""
    names = [
        *spellings,
        *(s for s in ("--sys-db-url", "-s", "--database-url") if s not in spellings),
    ]
    return click.option(
        *names,
        "system_database_url",
        envvar=environment.DATABASE_URL,
        callback=options.database_url,
        help=(
            f"System database URL (or {environment.DATABASE_URL}, or system_database_url "
            f"in {dbos_config.CONFIG_FILE})."
        ),
    )


sys_db_url = sys_db_option("--sys-db-url")


def _schema(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value in SCHEMA_NAMES:
        return value
    raise options.OneLineError(
        f"--schema {value}: celery_durable's tables live in the schema {SYSTEM_SCHEMA} "
        "(DBOS's default 'dbos' names it too); give the application a system database "
        "of its own to keep two apart"
    )


schema = click.option(
    "--schema",
    callback=_schema,
    help=(
        f"Schema of the system tables: {SYSTEM_SCHEMA} (DBOS's default name 'dbos' is "
        "accepted for it)."
    ),
)


def resolve_url(system_database_url: str | None) -> str:
    """The system database: the flag (or the environment), else ``system_database_url``
    in ``dbos-config.yaml``; exit status 1 when neither names one (as ``dbos``)."""
    if system_database_url:
        return system_database_url
    settings = dbos_config.load()
    configured = (settings or {}).get("system_database_url")
    if configured:
        try:
            return normalize_url(str(configured))
        except DBOSInitializationError as error:
            raise options.OneLineError(
                f"system_database_url in {dbos_config.CONFIG_FILE}: {error.message}"
            ) from None
    raise click.ClickException(
        "Missing database URL: please set it using -s/--sys-db-url, "
        f"{environment.DATABASE_URL} or your {dbos_config.CONFIG_FILE} file."
    )
