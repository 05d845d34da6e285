"""Enqueues the example workflows by name, as a producer that does not import them would.

    python -m worker.producer [--rounds N | --forever] [--interval-seconds S] [--wait]

Each round enqueues one of each example (``worker.examples``) with ``DBOSClient``: a
payment that succeeds, one whose provider is unreachable (it retries, compensates and
ends in ERROR), a flaky API call, an order fulfilment, a report that streams its
progress, a checkout that gets paid and one whose buyer never pays. Then it talks to
the running workflows as a web app would: it prints the report's progress as it
streams (``read_stream``); it reads the checkout's payment URL (``get_event``), delivers
the payment provider's webhook twice with one idempotency key (``send``: it counts
once) and reads the order's final events. Reads ``CELERY_DURABLE_DATABASE_URL`` and
``CELERY_DURABLE_BROKER_URL`` (or ``CELERY_BROKER_URL``), like the workers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from celery import Celery

from celery_durable import DBOSClient, WorkflowHandle
from celery_durable.error import (
    DBOSException,
    DBOSSchemaMissingError,
    DBOSStreamTimeoutError,
    DBOSWorkflowFunctionNotFoundError,
)
from worker.settings import broker_url_from, database_url_from

# What a running workflow is told or asked, after it is enqueued; False: it did not
# answer in time. Arguments: the client, the workflow id and the round's deadline.
Conversation = Callable[[DBOSClient, str, float], bool]


@dataclass(frozen=True)
class Example:
    """A workflow to enqueue, by the name the workers registered it under."""

    workflow_name: str
    args: tuple[Any, ...]
    talk: Conversation | None = None
    # More of DBOSClient.enqueue's options (who starts it, its timeout, ...).
    options: dict[str, Any] = field(default_factory=dict)


# The names the workflows use (worker/examples/checkout.py and progress.py): a producer
# shares names with the workers, not code.
PAYMENT_TOPIC = "payment"
PAYMENT_URL = "payment_url"
ORDER_STATUS = "order_status"
PROGRESS = "progress"


def _seconds_left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def watch_progress(client: DBOSClient, workflow_id: str, deadline: float) -> bool:
    """Prints each progress record as the report writes it, until it closes the stream."""
    try:
        for record in client.read_stream(
            workflow_id, PROGRESS, timeout_seconds=_seconds_left(deadline)
        ):
            click.echo(f"build_report {workflow_id}: progress {record}")
    except DBOSStreamTimeoutError:
        click.echo(f"build_report {workflow_id}: no progress in time")
        return False
    return True


def pay(client: DBOSClient, workflow_id: str, deadline: float) -> bool:
    """The web app's side of a checkout: it reads the page to send the buyer to, then
    forwards the payment provider's webhook, which the provider delivers twice here;
    the provider's event id, as the idempotency key, makes it count once."""
    url = client.get_event(workflow_id, PAYMENT_URL, timeout_seconds=_seconds_left(deadline))
    if url is None:
        click.echo(f"checkout {workflow_id}: no payment URL in time")
        return False
    click.echo(f"checkout {workflow_id}: pay at {url}")
    webhook = {"payment_id": f"pay-{workflow_id}", "status": "succeeded"}
    for delivery in (1, 2):
        client.send(workflow_id, webhook, PAYMENT_TOPIC, idempotency_key=f"evt-{workflow_id}")
        click.echo(f"checkout {workflow_id}: webhook delivery {delivery} sent")
    status = client.get_event(workflow_id, ORDER_STATUS, timeout_seconds=_seconds_left(deadline))
    click.echo(f"checkout {workflow_id}: {ORDER_STATUS} {status!r}")
    click.echo(f"checkout {workflow_id}: events {client.get_all_events(workflow_id)!r}")
    return status is not None


def examples(tag: str) -> list[Example]:
    """One round of examples; ``tag`` keeps each round's order ids apart."""
    return [
        Example("resilient_workflow", (f"order-{tag}",)),
        Example("resilient_workflow", (f"unreachable-{tag}",)),
        Example("fetch_with_backoff", (f"https://api.example.com/reports/{tag}?fail_times=2",)),
        Example("fulfil_order", (f"order-{tag}-f", ["book", "lamp"])),
        Example("build_report", (f"report-{tag}", ["sales", "returns", "stock"]), watch_progress),
        Example("checkout", (f"order-{tag}-c",), pay),
        # Nobody pays: the order is cancelled when the 3-second payment window closes.
        Example("checkout", (f"order-{tag}-unpaid", 3.0)),
        # A renewal needs the billing role (worker/examples/renewals.py).
        Example(
            "renew_subscription",
            (f"customer-{tag}",),
            options={
                "authenticated_user": "ops",
                "authenticated_roles": ["billing"],
                "workflow_timeout": 600.0,
            },
        ),
    ]


def _client() -> DBOSClient:
    try:
        database_url = database_url_from(os.environ)
        broker_url = broker_url_from(os.environ)
    except DBOSException as error:
        raise click.ClickException(str(error)) from error
    # task-sent events let Flower list a workflow (PENDING) before a worker takes it.
    celery = Celery("celery_durable_producer", broker=broker_url)
    celery.conf.update(task_send_sent_event=True, broker_connection_retry_on_startup=True)
    return DBOSClient(database_url, celery=celery)


def _enqueue(client: DBOSClient, example: Example, worker_timeout: float) -> WorkflowHandle[Any]:
    """Enqueues once some worker has registered the name (the stack starts together)."""
    deadline = time.monotonic() + worker_timeout
    waiting = False
    while True:
        try:
            return client.enqueue(
                {"workflow_name": example.workflow_name, **example.options},  # type: ignore[typeddict-item]
                *example.args,
            )
        except (DBOSWorkflowFunctionNotFoundError, DBOSSchemaMissingError) as error:
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"{error}: no worker serves it after {worker_timeout:.0f}s (do the "
                    "workers import worker.examples, in CELERY_DURABLE_IMPORTS?)"
                ) from error
            if not waiting:
                click.echo(f"waiting for a worker that serves {example.workflow_name} ...")
                waiting = True
            time.sleep(1.0)


def _report(example: Example, handle: WorkflowHandle[Any], deadline: float) -> bool:
    """Waits for one workflow; prints its outcome. False if it did not finish in time."""
    try:
        output = handle.get_result(timeout=max(0.1, deadline - time.monotonic()))
    except TimeoutError:
        click.echo(f"{example.workflow_name} {handle.workflow_id}: not finished in time")
        return False
    except Exception as error:
        # The workflow's own failure (the unreachable payment's, for one) is an outcome.
        status = handle.get_status().status
        click.echo(
            f"{example.workflow_name} {handle.workflow_id}: {status} -> "
            f"{type(error).__name__}: {error}"
        )
        return True
    click.echo(f"{example.workflow_name} {handle.workflow_id}: SUCCESS -> {output!r}")
    return True


@click.command()
@click.option("--rounds", default=1, show_default=True, help="Rounds of examples to enqueue.")
@click.option("--forever", is_flag=True, help="Keep enqueuing rounds until stopped.")
@click.option("--interval-seconds", default=10.0, show_default=True, help="Between rounds.")
@click.option("--wait", is_flag=True, help="Wait for each round's workflows and print them.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait per round.")
@click.option(
    "--worker-timeout",
    default=120.0,
    show_default=True,
    help="Seconds to wait for a worker that serves the examples.",
)
def main(
    rounds: int,
    forever: bool,
    interval_seconds: float,
    wait: bool,
    timeout: float,
    worker_timeout: float,
) -> None:
    """Enqueue the example workflows by name."""
    client = _client()
    finished = True
    try:
        done = 0
        while forever or done < rounds:
            if done:
                time.sleep(interval_seconds)
            finished = _round(client, wait, timeout, worker_timeout) and finished
            done += 1
    finally:
        client.destroy()
    if not finished:
        raise SystemExit(1)


def _round(client: DBOSClient, wait: bool, timeout: float, worker_timeout: float) -> bool:
    """Enqueues one round, talks to the workflows that expect it, and with ``wait``
    reports every outcome. False if something did not happen in time."""
    enqueued = []
    for example in examples(uuid.uuid4().hex[:8]):
        handle = _enqueue(client, example, worker_timeout)
        click.echo(f"enqueued {example.workflow_name} {handle.workflow_id}")
        enqueued.append((example, handle))
    deadline = time.monotonic() + timeout
    finished = True
    for example, handle in enqueued:
        if example.talk is not None:
            finished = example.talk(client, handle.workflow_id, deadline) and finished
    if wait:
        for example, handle in enqueued:
            finished = _report(example, handle, deadline) and finished
    return finished


if __name__ == "__main__":  # pragma: no cover
    main()
