"""``dbos``'s project commands: ``version``, ``reset``, ``rename-application``,
``start`` and ``init``, as far as they apply to a Celery deployment; what does not
exits with status 1 and says what to use instead."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from celery_durable.cli import dbos_config, dbos_options
from celery_durable.error import DBOSException
from celery_durable.service.tools import reset_database


@click.command(help="Show the version and exit")
def version() -> None:
    click.echo(f"celery-durable CLI version: {metadata.version('celery-durable')}")


@click.command(help="Reset the system database: delete every workflow and step")
@click.option("-y", "--yes", is_flag=True, help="Skip confirmation prompt")
@dbos_options.sys_db_url
def reset(yes: bool, system_database_url: str | None) -> None:
    url = dbos_options.resolve_url(system_database_url)
    if not yes and not click.confirm(
        "This command resets your system database, deleting metadata about past "
        "workflows and steps. Are you sure you want to proceed?"
    ):
        click.echo("Operation cancelled.")
        raise click.exceptions.Exit()
    try:
        reset_database(url, truncate=False)
    except DBOSException as error:
        click.echo(f"Error resetting system database: {error}", err=True)
        raise click.exceptions.Exit(code=1) from error


@click.command(
    name="rename-application",
    help="Not needed here: workflows have no owning application (exits with status 1)",
)
@click.option("-y", "--yes", is_flag=True, help="Skip confirmation prompt")
@dbos_options.sys_db_url
@click.option("--from", "-f", "old_name", help="The application's previous name")
@click.option("--to", "-t", "new_name", required=True, help="The application that owns the rows")
@click.option("--adopt-unclaimed-rows", is_flag=True, help="Also take rows no application owns")
@click.option("--batch-size", type=int, default=1000, help="Rows re-owned per transaction")
@dbos_options.schema
def rename_application(**arguments: Any) -> None:
    raise click.ClickException(
        "rename-application: celery_durable's workflows have no owning application (one "
        "system database serves one Celery app; a workflow runs on any worker that "
        "registered its name), so there is nothing to re-own after a rename. Keep the "
        "workflow names (their Celery task names) when renaming the application, or "
        "fork the old workflows (`celery-durable workflow fork`) onto renamed code."
    )


@click.command(help=f"Run the start commands of '{dbos_config.CONFIG_FILE}' (runtimeConfig.start)")
def start() -> None:
    settings = dbos_config.load()
    if settings is None:
        raise click.ClickException(
            f"No {dbos_config.CONFIG_FILE} in {Path.cwd()}: `start` runs its "
            "runtimeConfig.start commands. Start workers with `celery -A module worker` "
            "(see docs/deploy.md), or write the file (`celery-durable init --config`)."
        )
    start_commands = dbos_config.commands(settings, "runtimeConfig", "start")
    if not start_commands:
        raise click.ClickException(
            f"{dbos_config.CONFIG_FILE} has no runtimeConfig.start commands to run"
        )
    click.echo(f"Executing start commands from '{dbos_config.CONFIG_FILE}'")
    for command in start_commands:
        click.echo(f"Executing: {command}")
        returncode = _run_forwarding_signals(command)
        if returncode != 0:
            click.echo(f"Start command failed with exit code {returncode}: {command}")
            # A child killed by a signal reports -N: exit as a shell would, 128+N.
            raise click.exceptions.Exit(returncode if returncode > 0 else 128 - returncode)


def _run_forwarding_signals(command: str) -> int:
    """Runs ``command`` in a shell of its own process group; SIGINT and SIGTERM are
    passed on to that group, and this process then exits (as ``dbos start``)."""
    process = subprocess.Popen(command, shell=True, text=True, start_new_session=True)

    def forward(signum: int, frame: Any) -> None:
        if process.poll() is None:
            os.killpg(os.getpgid(process.pid), signum)
        os._exit(process.returncode if process.returncode is not None else 1)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_APP_NAME = re.compile(r"^[a-z0-9_-]{3,256}$")

_CONFIG_TEMPLATE = """\
# celery_durable reads this file as DBOS's command line does: `celery-durable start`
# runs runtimeConfig.start; the workflow commands and `migrate` use system_database_url
# when no -s/--sys-db-url is given. Environment variables: ${{NAME}}.
name: {name}
language: python
runtimeConfig:
  start:
    - "{start_command}"
system_database_url: ${{DBOS_SYSTEM_DATABASE_URL}}
"""


@click.command(
    short_help="Write dbos-config.yaml (--config); there are no project templates",
    help="With --config, write a dbos-config.yaml for PROJECT_NAME. celery_durable has "
    "no project templates: start from worker/examples/ or `celery-durable demo`.",
)
@click.argument("project_name", required=False, default=None)
@click.option("--template", "-t", help="Not available: there are no project templates")
@click.option("--config", "-c", is_flag=True, help="Only add dbos-config.yaml")
def init(project_name: str | None, template: str | None, config: bool) -> None:
    if template is not None or not config:
        raise click.ClickException(
            "celery_durable has no project templates"
            + (f" ({template!r} included)" if template else "")
            + ": start from the example programs in worker/examples/ (DBOS programs with "
            "their imports changed) or run `celery-durable demo`; `celery-durable init "
            "--config` writes a dbos-config.yaml."
        )
    name = project_name or click.prompt("What is your project's name?", Path.cwd().name)
    if not _APP_NAME.match(name):
        raise click.ClickException(
            f"{name} is an invalid app name. App names must be between 3 and 256 characters "
            "long and contain only lowercase letters, numbers, dashes, and underscores."
        )
    target = Path(dbos_config.CONFIG_FILE)
    if target.exists():
        click.echo(f"File {target.resolve()} already exists, skipping")
        return
    target.write_text(_CONFIG_TEMPLATE.format(name=name, start_command="python3 main.py"))
    click.echo(f"Wrote {target.resolve()}")
