"""The ``celery-durable`` command line.

Connection settings come from flags or ``CELERY_DURABLE_*`` environment variables (named
in :mod:`celery_durable.core.environment`); the CLI and ``worker/`` are the only places
that read the environment. ``workflow``, ``queue``, ``version``, ``reset``, ``start``,
``init``, ``postgres`` and ``rename-application`` follow ``dbos``'s command line (its
options and JSON output); ``workflows`` and ``schedules`` are celery_durable's own.
"""

from __future__ import annotations

import click

from celery_durable.cli.admin import migrate, recover
from celery_durable.cli.dashboard import dashboard
from celery_durable.cli.dbos_workflow_commands import queue, workflow
from celery_durable.cli.demo import demo
from celery_durable.cli.postgres_commands import postgres
from celery_durable.cli.project_commands import init, rename_application, reset, start, version
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
# dbos's command line: `dbos workflow ...` (and its `workflow queue list`, also
# reachable as `queue list`), `dbos version`, `dbos reset`, ...
main.add_command(workflow)
main.add_command(queue)
main.add_command(version)
main.add_command(reset)
main.add_command(start)
main.add_command(init)
main.add_command(postgres)
main.add_command(rename_application)
