"""``celery-durable dashboard``: serve the web dashboard (the ``dashboard`` extra)."""

from __future__ import annotations

import os

import click

from celery_durable.cli import options
from celery_durable.core import environment
from celery_durable.error import DBOSException


@click.command()
@options.database
@options.broker
@click.option(
    "--host",
    envvar=environment.DASHBOARD_HOST,
    default="127.0.0.1",
    show_default=True,
    help=f"Address to listen on (or {environment.DASHBOARD_HOST}).",
)
@click.option(
    "--port",
    envvar=environment.DASHBOARD_PORT,
    type=click.IntRange(1, 65535),
    default=8090,
    show_default=True,
    help=f"Port (or {environment.DASHBOARD_PORT}).",
)
@click.option(
    "--flower-url",
    envvar=environment.FLOWER_URL,
    help=f"Flower's address, to link each Celery task (or {environment.FLOWER_URL}).",
)
@click.option(
    "--refresh-seconds",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="How often pages refresh themselves (0: never).",
)
def dashboard(
    database_url: str,
    broker_url: str | None,
    host: str,
    port: int,
    flower_url: str | None,
    refresh_seconds: float,
) -> None:
    """Serve the dashboard: workflows, timelines, queues, actions, /metrics.

    Actions (cancel, resume, fork) need authentication: set
    CELERY_DURABLE_DASHBOARD_TOKEN, or CELERY_DURABLE_DASHBOARD_USERNAME and
    CELERY_DURABLE_DASHBOARD_PASSWORD (HTTP basic). Without either it is read-only.
    Secrets come only from the environment, never from flags (which `ps` shows).
    """
    try:
        import uvicorn

        from celery_durable.dashboard import DashboardSettings, check_schema, create_app
    except ImportError as error:
        raise click.ClickException(
            "The dashboard needs the 'dashboard' extra: "
            f"pip install 'celery-durable[dashboard]' ({error})"
        ) from error
    try:
        settings = DashboardSettings(
            database_url=database_url,
            broker_url=broker_url,
            token=os.environ.get(environment.DASHBOARD_TOKEN) or None,
            basic_username=os.environ.get(environment.DASHBOARD_USERNAME) or None,
            basic_password=os.environ.get(environment.DASHBOARD_PASSWORD) or None,
            flower_url=flower_url or None,
            refresh_seconds=refresh_seconds,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    app = create_app(settings)
    try:
        version = check_schema(app)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    mode = "actions need authentication" if settings.auth_configured else "read-only"
    click.echo(f"celery-durable dashboard on http://{host}:{port} (schema {version}, {mode})")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
