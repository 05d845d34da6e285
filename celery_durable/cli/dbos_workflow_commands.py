"""``celery-durable workflow ...`` and ``queue list``: ``dbos workflow ...``'s commands,
options and JSON output, so that scripts written against ``dbos`` run unchanged.

``celery-durable workflows ...`` (plural) stays: tables for people, more detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from celery_durable.api.client import DBOSClient
from celery_durable.api.options import SetWorkflowID
from celery_durable.cli import dbos_options, options
from celery_durable.core.records import WorkflowStatus
from celery_durable.error import DBOSException


class OrderedGroup(click.Group):
    """Lists its commands in the order they were added (as ``dbos`` does)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@contextmanager
def _client(system_database_url: str | None, broker_url: str | None = None) -> Iterator[DBOSClient]:
    """A client of the resolved system database. Without a broker, what it starts is
    committed in PostgreSQL and a worker publishes it (see ``DBOSClient``)."""
    client = DBOSClient(dbos_options.resolve_url(system_database_url), broker_url or None)
    try:
        yield client
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:
        raise options.OneLineError(str(error)) from error
    finally:
        client.destroy()


def _document(status: WorkflowStatus) -> dict[str, Any]:
    """A status as ``dbos`` prints it: its attributes (``status.__dict__``)."""
    return dict(vars(status))


workflow = OrderedGroup(name="workflow", help="Manage workflows (as `dbos workflow`; JSON output).")
queue = OrderedGroup(name="queue", help="Manage enqueued workflows (as `dbos workflow queue`).")

_status_help = (
    "Retrieve workflows with this status (PENDING, SUCCESS, ERROR, ENQUEUED, DELAYED, "
    "CANCELLED, or MAX_RECOVERY_ATTEMPTS_EXCEEDED)"
)


@workflow.command(name="list", help="List workflows, oldest first (JSON).")
@dbos_options.sys_db_url
@click.option("--limit", "-l", type=int, default=10, show_default=True, help="Limit the results")
@click.option("--user", "-u", help="Retrieve workflows run by this user")
@click.option("--start-time", "-t", help="Created at or after this time (ISO 8601)")
@click.option("--end-time", "-e", help="Created at or before this time (ISO 8601)")
@click.option("--status", "-S", type=options.WORKFLOW_STATUS, help=_status_help)
@click.option("--application-version", "-v", help="Retrieve workflows of this version")
@click.option("--name", "-n", help="Retrieve workflows with this name")
@click.option(
    "--application-name",
    "-a",
    help="Owning application (no workflow has one here: every workflow matches, as DBOS "
    "matches unowned ones)",
)
@click.option("--sort-desc", "-d", is_flag=True, help="Newest first")
@click.option("--offset", "-o", type=int, help="Offset for pagination")
@dbos_options.schema
def list_workflows(
    system_database_url: str | None,
    limit: int,
    user: str | None,
    start_time: str | None,
    end_time: str | None,
    status: str | None,
    application_version: str | None,
    name: str | None,
    application_name: str | None,
    sort_desc: bool,
    offset: int | None,
    schema: str | None,
) -> None:
    with _client(system_database_url) as client:
        found = client.list_workflows(
            limit=limit,
            offset=offset,
            sort_desc=sort_desc,
            user=user,
            start_time=start_time,
            end_time=end_time,
            status=status,
            app_version=application_version,
            name=name,
            application_name=application_name,
        )
    dbos_options.print_json([_document(status) for status in found])


@workflow.command(help="Retrieve the status of a workflow (JSON).")
@click.argument("workflow_id")
@dbos_options.sys_db_url
@dbos_options.schema
def get(workflow_id: str, system_database_url: str | None, schema: str | None) -> None:
    with _client(system_database_url) as client:
        status = client.retrieve_workflow(workflow_id).get_status()
    dbos_options.print_json(_document(status))


@workflow.command(help="List the steps of a workflow (JSON).")
@click.argument("workflow_id")
@dbos_options.sys_db_url
@dbos_options.schema
def steps(workflow_id: str, system_database_url: str | None, schema: str | None) -> None:
    with _client(system_database_url) as client:
        client.retrieve_workflow(workflow_id)
        found = client.list_workflow_steps(workflow_id)
    dbos_options.print_json(found)


@workflow.command(help="Cancel a workflow so it is no longer automatically retried or restarted.")
@click.argument("workflow_id")
@dbos_options.sys_db_url
@dbos_options.schema
def cancel(workflow_id: str, system_database_url: str | None, schema: str | None) -> None:
    with _client(system_database_url) as client:
        client.cancel_workflow(workflow_id)


@workflow.command(help="Resume a workflow that has been cancelled.")
@click.argument("workflow_id")
@dbos_options.sys_db_url
@dbos_options.schema
@options.broker
def resume(
    workflow_id: str, system_database_url: str | None, schema: str | None, broker_url: str | None
) -> None:
    with _client(system_database_url, broker_url) as client:
        client.retrieve_workflow(workflow_id)
        client.resume_workflow(workflow_id)


@workflow.command(help="Fork a workflow with a new id, re-running it from a step (JSON).")
@click.argument("workflow_id")
@click.option("--step", "-S", type=int, default=1, show_default=True, help="Restart from this step")
@click.option("--forked-workflow-id", "-f", help="Custom ID for the forked workflow")
@click.option(
    "--application-version", "-v", help="Custom application version for the forked workflow"
)
@dbos_options.sys_db_url
@dbos_options.schema
@options.broker
def fork(
    workflow_id: str,
    step: int,
    forked_workflow_id: str | None,
    application_version: str | None,
    system_database_url: str | None,
    schema: str | None,
    broker_url: str | None,
) -> None:
    with _client(system_database_url, broker_url) as client:
        if forked_workflow_id is not None:
            with SetWorkflowID(forked_workflow_id):
                handle = client.fork_workflow(
                    workflow_id, step, application_version=application_version
                )
        else:
            handle = client.fork_workflow(
                workflow_id, step, application_version=application_version
            )
        status = handle.get_status()
    dbos_options.print_json(_document(status))


@queue.command(name="list", help="List enqueued workflows, oldest first (JSON).")
@dbos_options.sys_db_url
@click.option("--limit", "-l", type=int, help="Limit the results")
@click.option("--start-time", "-t", help="Created at or after this time (ISO 8601)")
@click.option("--end-time", "-e", help="Created at or before this time (ISO 8601)")
@click.option("--status", "-S", type=options.WORKFLOW_STATUS, help=_status_help)
@click.option("--queue-name", "-q", help="Retrieve workflows on this queue")
@click.option("--name", "-n", help="Retrieve workflows with this name")
@click.option("--application-name", "-a", help="Owning application (every workflow matches here)")
@click.option("--sort-desc", "-d", is_flag=True, help="Newest first")
@click.option("--offset", "-o", type=int, help="Offset for pagination")
@dbos_options.schema
def list_queue(
    system_database_url: str | None,
    limit: int | None,
    start_time: str | None,
    end_time: str | None,
    status: str | None,
    queue_name: str | None,
    name: str | None,
    application_name: str | None,
    sort_desc: bool,
    offset: int | None,
    schema: str | None,
) -> None:
    with _client(system_database_url) as client:
        found = client.list_queued_workflows(
            limit=limit,
            offset=offset,
            sort_desc=sort_desc,
            start_time=start_time,
            end_time=end_time,
            queue_name=queue_name,
            status=status,
            name=name,
            application_name=application_name,
        )
    dbos_options.print_json([_document(status) for status in found])


workflow.add_command(queue)
