"""The ``celery-durable`` command line.

Connection settings come from flags or ``CELERY_DURABLE_*`` environment variables (named
in :mod:`celery_durable.core.environment`); the CLI and ``worker/`` are the only places
that read the environment.
"""

from __future__ import annotations

import click

from celery_durable.cli.admin import migrate, recover
from celery_durable.cli.dashboard import dashboard
from celery_durable.cli.demo import demo
from celery_durable.cli.schedule_commands import schedules
from celery_durable.cli.workflow_commands import workflows


@click.group()
def main() -> None:
    """Operate celery_durable workflows."""


main.add_command(workflows)
main.add_command(schedules)
main.add_command(migrate)
main.add_command(recover)
main.add_command(demo)
main.add_command(dashboard)
