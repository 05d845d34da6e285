"""``celery-durable workflows ...``: list, inspect and operate workflows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from celery_durable.api.client import DBOSClient
from celery_durable.cli import options, tables
from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.serialization import to_jsonable
from celery_durable.error import DBOSException, DBOSStreamTimeoutError
from celery_durable.service import progress


@contextmanager
def _client(database_url: str, broker_url: str | None) -> Iterator[DBOSClient]:
    # Reading needs no broker; a placeholder URL is never connected to.
    client = DBOSClient(database_url, broker_url or "memory://", lazy=True)
    try:
        yield client
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    finally:
        client.destroy()


def _emit(as_json: bool, document: Any, text: Callable[[], str]) -> None:
    click.echo(json.dumps(document, indent=2) if as_json else text())


@click.group()
def workflows() -> None:
    """List, inspect and operate workflows (tables; `workflow` is dbos's, in JSON)."""


@workflows.command("list")
@options.database
@click.option("--status", multiple=True, type=options.WORKFLOW_STATUS, help="Status (repeatable).")
@click.option("--name", help="Workflow name.")
@click.option("--queue", help="Queue name.")
@click.option("--since", help="Created at or after (ISO-8601).")
@click.option("--until", help="Created at or before (ISO-8601).")
@click.option("--version", "app_version", multiple=True, help="Application version.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@options.as_json
def list_workflows(
    database_url: str,
    status: tuple[str, ...],
    name: str | None,
    queue: str | None,
    since: str | None,
    until: str | None,
    app_version: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Workflows, newest first."""
    with _client(database_url, None) as client:
        try:
            found = client.list_workflows(
                status=list(status) or None,
                name=name,
                queue_name=queue,
                start_time=since,
                end_time=until,
                app_version=list(app_version) or None,
                limit=limit,
                sort_desc=True,
            )
        except ValueError as error:
            raise click.BadParameter(str(error)) from error
    _emit(
        as_json,
        [tables.workflow_document(w) for w in found],
        lambda: tables.workflows_table(found),
    )


@workflows.command("get")
@options.database
@click.argument("workflow_id")
@options.as_json
def get_workflow(database_url: str, workflow_id: str, as_json: bool) -> None:
    """One workflow's status, inputs, outcome and events (times in UTC, ISO-8601)."""
    with _client(database_url, None) as client:
        status = client.retrieve_workflow(workflow_id).get_status()
        events = client.get_all_events(workflow_id)
        overview = client.overview()
        execution = overview.execution(workflow_id)
        steps = client.list_workflow_steps(workflow_id) if execution is not None else []
        workers = client.list_worker_versions() if status.app_version is not None else []
        seen = overview.versions_last_seen() if status.app_version is not None else {}
        unregistered = client.unregistered_note(status)
    now = now_epoch_ms()
    document = tables.workflow_document(status)
    document["forked_from"] = execution.forked_from if execution is not None else None
    document["reason"] = progress.ending_reason(
        status.status, status.workflow_deadline_epoch_ms, status.updated_at
    )
    document["running"] = progress.running_now(steps, execution, now)
    document["waiting_for"] = unregistered or tables.version_note(status, workers, seen, now)

    def text() -> str:
        shown = {
            **document,
            "error": tables.brief_error(document["error"]),
            "running": tables.running_line(document["running"]),
        }
        lines = [
            f"{tables.text_key(key)}: {tables.text_value(key, value)}"
            for key, value in shown.items()
            if key not in tables.OMITTED_WHEN_NONE or value is not None
        ]
        lines.append("events:" if events else "events: (none)")
        lines.extend(f"  {key}: {tables.json_value(value)}" for key, value in events.items())
        return "\n".join(lines)

    _emit(as_json, {**document, "events": tables.events_document(events)}, text)


@workflows.command("events")
@options.database
@click.argument("workflow_id")
@options.as_json
def workflow_events(database_url: str, workflow_id: str, as_json: bool) -> None:
    """A workflow's events: each key with its latest value (JSON)."""
    with _client(database_url, None) as client:
        client.retrieve_workflow(workflow_id)
        events = client.get_all_events(workflow_id)
    _emit(
        as_json,
        tables.events_document(events),
        lambda: tables.events_table(events) if events else "(no events)",
    )


@workflows.command("stream")
@options.database
@click.argument("workflow_id")
@click.argument("key")
@click.option(
    "--follow",
    is_flag=True,
    help="Keep reading until the stream is closed or the workflow finishes.",
)
@options.as_json
def workflow_stream(
    database_url: str, workflow_id: str, key: str, follow: bool, as_json: bool
) -> None:
    """The values of a workflow's stream KEY, in order, one JSON value per line (--json:
    one JSON list). Without --follow, the values written so far."""
    with _client(database_url, None) as client:
        client.retrieve_workflow(workflow_id)
        values = _stream_values(client, workflow_id, key, follow)
        if as_json:
            click.echo(json.dumps([to_jsonable(value) for value in values], indent=2))
        else:
            for value in values:
                click.echo(tables.json_value(value))  # flushed: --follow shows each at once


def _stream_values(client: DBOSClient, workflow_id: str, key: str, follow: bool) -> Iterator[Any]:
    if follow:
        yield from client.read_stream(workflow_id, key)
        return
    # A zero timeout reads what is there: the reader raises where it would have waited.
    try:
        yield from client.read_stream(workflow_id, key, timeout_seconds=0)
    except DBOSStreamTimeoutError:
        return


@workflows.command("steps")
@options.database
@click.argument("workflow_id")
@options.as_json
def workflow_steps(database_url: str, workflow_id: str, as_json: bool) -> None:
    """One row per step attempt, with the backoff waits between attempts."""
    with _client(database_url, None) as client:
        client.retrieve_workflow(workflow_id)
        steps = client.list_workflow_steps(workflow_id)
        execution = client.overview().execution(workflow_id)
    now = now_epoch_ms()
    running = progress.running_now(steps, execution, now)

    def text() -> str:
        table = tables.steps_table(steps, execution, now) if steps else "(no steps recorded)"
        line = tables.running_line(running)
        return table if line is None else f"{table}\nrunning: {line}"

    _emit(
        as_json,
        [
            tables.step_document(step)
            for step in progress.with_current_attempts(steps, execution, now)
        ],
        text,
    )


@workflows.command("cancel")
@options.database
@click.argument("workflow_id")
def cancel_workflow(database_url: str, workflow_id: str) -> None:
    """Stop a workflow at its next step boundary (and drop its pending wait)."""
    with _client(database_url, None) as client:
        client.cancel_workflow(workflow_id)
        status = client.retrieve_workflow(workflow_id).get_status().status
    click.echo(f"{workflow_id}: {status}")


@workflows.command("resume")
@options.database
@options.broker
@click.argument("workflow_id")
@click.option(
    "--force",
    is_flag=True,
    help="Resume a failed (ERROR) workflow anyway: its recorded steps replay as they ended.",
)
def resume_workflow(
    database_url: str, broker_url: str | None, workflow_id: str, force: bool
) -> None:
    """Run a cancelled workflow (or one out of recovery attempts) again from its
    checkpoints. A failed (ERROR) one is refused without --force: it would replay its
    recorded error; fork it from the step to re-run instead."""
    with _client(database_url, options.require_broker(broker_url)) as client:
        current = client.retrieve_workflow(workflow_id).get_status().status
        if current == "ERROR" and not force:
            raise click.ClickException(
                f"{workflow_id} failed (ERROR): resuming it would replay its recorded "
                f"error at once. Re-run it from a step with `celery-durable workflows fork "
                f"{workflow_id} --step N` (see `workflows steps`), or pass --force."
            )
        if current == "ERROR":  # --force: DBOS 3.4's resume_workflow leaves it alone
            handle = client.resume_failed_workflow(workflow_id)
        else:
            handle = client.resume_workflow(workflow_id)
        if current in RESUMABLE:
            # What the resume did; read back, the status may already be a worker's.
            status = "ENQUEUED"
        else:
            status = f"{handle.get_status().status} (nothing to resume)"
    click.echo(f"{workflow_id}: {status}")


# The statuses a resume enqueues again (the store's RESUME_WORKFLOW); others are left.
RESUMABLE = frozenset({"CANCELLED", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


@workflows.command("fork")
@options.database
@options.broker
@click.argument("workflow_id")
@click.option(
    "--step",
    "start_step",
    default="1",
    show_default=True,
    callback=options.fork_step,
    help="First step id to re-run (steps are numbered from 1; 1 re-runs everything).",
)
@click.option(
    "--application-version",
    help="Run the copy on workers of this application version (default: the first to claim it).",
)
def fork_workflow(
    database_url: str,
    broker_url: str | None,
    workflow_id: str,
    start_step: int,
    application_version: str | None,
) -> None:
    """Start a copy of a workflow that re-runs it from step --step."""
    with _client(database_url, options.require_broker(broker_url)) as client:
        handle = client.fork_workflow(
            workflow_id, start_step, application_version=application_version
        )
    click.echo(handle.workflow_id)
