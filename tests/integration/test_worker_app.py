"""The deployable worker: ``celery -A worker.app worker``/``beat`` built from the environment.

A real worker and a real beat run the examples (``worker.examples``, the default
imports), enqueued by name by ``python -m worker.producer``, which also talks to the
running checkout and report (events, messages, streams); a worker whose database is
not configured refuses to start and names the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from celery_durable import DBOSClient
from celery_durable.error import DBOSInitializationError
from tests.conftest import DATABASE_URL, recreate_database
from tests.integration.subprocesses import CELERY, Process, spawn, wait_for
from worker.settings import from_environ

WORKER_DATABASE_URL = (
    make_url(DATABASE_URL)
    .set(database=f"{make_url(DATABASE_URL).database}_worker_app")
    .render_as_string(hide_password=False)
)
REDIS_URL = os.environ.get("CELERY_DURABLE_TEST_FLOWER_REDIS_URL", "redis://127.0.0.1:6379/12")
# Variables of the environment that would change what the worker reads.
OURS = ("CELERY_DURABLE_", "CELERY_BROKER_URL")


def _env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    return {**base, **values}


@pytest.fixture
def stack_env() -> dict[str, str]:
    recreate_database(WORKER_DATABASE_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    # CELERY_BROKER_URL, Celery's own name, is accepted as the broker.
    return _env(
        CELERY_DURABLE_DATABASE_URL=WORKER_DATABASE_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_DURABLE_RECOVERY_INTERVAL_SECONDS="1",
    )


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def test_worker_and_beat_run_the_examples(
    stack_env: dict[str, str], processes: list[Process], tmp_path: Path
) -> None:
    worker = spawn(
        [
            *CELERY,
            "-A",
            "worker.app",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=worker-app-{uuid.uuid4().hex[:8]}@localhost",
        ],
        stack_env,
        tmp_path / "worker.log",
    )
    processes.append(worker)
    beat = spawn(
        [*CELERY, "-A", "worker.app", "beat", f"--schedule={tmp_path / 'beat'}", "-l", "INFO"],
        stack_env,
        tmp_path / "beat.log",
    )
    processes.append(beat)

    producer = subprocess.run(
        [sys.executable, "-m", "worker.producer", "--rounds", "1", "--wait", "--timeout", "60"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert producer.returncode == 0, producer.stdout + producer.stderr + worker.output()
    enqueued = [line.split()[1:] for line in producer.stdout.splitlines() if "enqueued" in line]
    assert [name for name, _ in enqueued] == [
        "resilient_workflow",
        "resilient_workflow",
        "fetch_with_backoff",
        "fulfil_order",
        "build_report",
        "checkout",
        "checkout",
        "renew_subscription",
    ]

    client = DBOSClient(WORKER_DATABASE_URL, REDIS_URL)
    try:
        (_, paid), (_, unreachable), (_, fetched), (_, fulfilled) = enqueued[:4]
        assert client.retrieve_workflow(paid).get_result(timeout=5) == "completed"
        # Payment with compensation: 3 attempts, then cancel_order, then ERROR.
        assert client.retrieve_workflow(unreachable).get_status().status == "ERROR"
        steps = client.list_workflow_steps(unreachable)
        assert [(s["function_name"], s["attempts"]) for s in steps] == [
            ("charge_payment", 3),
            ("cancel_order", 1),
        ]
        # The flaky API failed twice (2 s apart), then answered on the third attempt.
        result = client.retrieve_workflow(fetched).get_result(timeout=5)
        assert result["status"] == 200 and result["attempts"] == 3
        assert [s["function_name"] for s in client.list_workflow_steps(fetched)] == [
            "robust_api_call"
        ]
        fulfilment = client.retrieve_workflow(fulfilled).get_result(timeout=5)
        assert fulfilment["reserved"] == [
            f"{fulfilment['order_id']}:book",
            f"{fulfilment['order_id']}:lamp",
        ]
        _check_talking_examples(client, producer.stdout, [w for _, w in enqueued[4:7]])
        # A renewal: started as "ops" with the billing role and a timeout, receipt sent.
        renewal = client.retrieve_workflow(enqueued[7][1])
        status = renewal.get_status()
        assert status.input is not None
        customer = status.input["args"][0]
        assert renewal.get_result(timeout=5) == {
            "charge": f"renewal-{customer}",
            "receipt": f"receipt-renewal-{customer}",
            "renewed_by": "ops",
        }
        assert (status.authenticated_roles, status.workflow_timeout_ms) == (["billing"], 600_000)
    finally:
        client.destroy()

    # Beat schedules the recovery sweep and the worker runs it.
    wait_for(
        lambda: (
            "celery_durable.recover" in beat.output()
            and "Task celery_durable.recover[" in worker.output()
        ),
        20,
        "beat to send the recovery sweep to the worker",
        processes,
    )


def _check_talking_examples(client: DBOSClient, output: str, workflow_ids: list[str]) -> None:
    report, paid, unpaid = workflow_ids
    _check_report(client, output, report)
    _check_checkouts(client, output, paid, unpaid)


def _check_report(client: DBOSClient, output: str, report: str) -> None:
    """The report streamed its progress to the producer as it went."""
    records = [
        {"section": "sales", "rows": 500, "done": 1, "of": 3},
        {"section": "returns", "rows": 700, "done": 2, "of": 3},
        {"section": "stock", "rows": 500, "done": 3, "of": 3},
    ]
    assert client.retrieve_workflow(report).get_result(timeout=5) == {
        "sales": 500,
        "returns": 700,
        "stock": 500,
    }
    printed = [
        line for line in output.splitlines() if line.startswith(f"build_report {report}: progress")
    ]
    assert printed == [f"build_report {report}: progress {record!r}" for record in records]
    assert list(client.read_stream(report, "progress")) == records


def _check_checkouts(client: DBOSClient, output: str, paid: str, unpaid: str) -> None:
    """The paid checkout had its payment URL read and its webhook delivered twice but
    received once, then published its order; the unpaid one was cancelled when its
    payment window closed."""
    assert client.retrieve_workflow(paid).get_result(timeout=5) == "paid"
    inputs = client.retrieve_workflow(paid).get_status().input
    assert inputs is not None
    order_id = inputs["args"][0]
    assert client.get_all_events(paid) == {
        "payment_url": f"https://pay.example.com/session/ps-{order_id}",
        "order_url": f"https://shop.example.com/orders/{order_id}",
        "order_status": "paid",
    }
    assert f"checkout {paid}: webhook delivery 2 sent" in output
    assert f"checkout {paid}: order_status 'paid'" in output
    # DBOS numbering: set_event takes one id, recv two (its own and its timeout's sleep).
    steps = client.list_workflow_steps(paid)
    assert [(s["function_id"], s["function_name"]) for s in steps] == [
        (1, "open_payment_session"),
        (2, "DBOS.setEvent"),
        (3, "DBOS.recv"),
        (4, "DBOS.sleep"),
        (5, "confirm_order"),
        (6, "DBOS.setEvent"),
        (7, "DBOS.setEvent"),
    ]
    assert steps[2]["output"] == {"payment_id": f"pay-{paid}", "status": "succeeded"}
    # The second delivery of the webhook (same idempotency key) added no message.
    with psycopg.connect(WORKER_DATABASE_URL) as connection:
        (messages,) = connection.execute(
            "SELECT count(*) FROM celery_durable.notifications WHERE destination_uuid = %s",
            (paid,),
        ).fetchone() or (None,)
    assert messages == 1

    assert client.retrieve_workflow(unpaid).get_result(timeout=5) == "cancelled"
    assert client.get_all_events(unpaid)["order_status"] == "cancelled"
    steps = client.list_workflow_steps(unpaid)
    assert [s["function_name"] for s in steps] == [
        "open_payment_session",
        "DBOS.setEvent",
        "DBOS.recv",
        "DBOS.sleep",
        "cancel_unpaid_order",
        "DBOS.setEvent",
    ]
    assert steps[2]["output"] is None  # the payment window closed


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_BROKER_URL": REDIS_URL}, "CELERY_DURABLE_DATABASE_URL is not set"),
        (
            {
                "CELERY_BROKER_URL": REDIS_URL,
                "CELERY_DURABLE_DATABASE_URL": WORKER_DATABASE_URL,
                "CELERY_DURABLE_IMPORTS": "worker.examples,no_such_workflows",
            },
            "CELERY_DURABLE_IMPORTS: cannot import 'no_such_workflows'",
        ),
        (
            {"CELERY_BROKER_URL": REDIS_URL, "CELERY_DURABLE_DATABASE_URL": "db:5432/orders"},
            "Invalid database URL: it has no scheme",
        ),
    ],
)
def test_a_misconfigured_worker_fails_loudly(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [*CELERY, "-A", "worker.app", "worker", "--loglevel=INFO"],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    # One line, not a traceback through Celery's app loading.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Cannot start the worker: {message}"), lines


def test_settings_name_every_bad_variable() -> None:
    with pytest.raises(DBOSInitializationError, match="CELERY_DURABLE_DATABASE_URL is not set"):
        from_environ({"CELERY_BROKER_URL": REDIS_URL})
    database = {"CELERY_DURABLE_DATABASE_URL": WORKER_DATABASE_URL}
    with pytest.raises(DBOSInitializationError, match="CELERY_DURABLE_BROKER_URL"):
        from_environ(database)
    full = {**database, "CELERY_DURABLE_BROKER_URL": REDIS_URL}
    with pytest.raises(DBOSInitializationError, match="CELERY_DURABLE_SYS_DB_POOL_SIZE='x'"):
        from_environ({**full, "CELERY_DURABLE_SYS_DB_POOL_SIZE": "x"})
    with pytest.raises(DBOSInitializationError, match="CELERY_DURABLE_TASK_EVENTS"):
        from_environ({**full, "CELERY_DURABLE_TASK_EVENTS": "maybe"})

    settings = from_environ({**full, "CELERY_DURABLE_IMPORTS": " a.b , c ,"})
    assert settings.imports == ("a.b", "c")
    assert from_environ(full).imports == ("worker.examples",)
    # CELERY_DURABLE_BROKER_URL wins over Celery's own variable.
    both = {**full, "CELERY_BROKER_URL": "amqp://elsewhere//"}
    assert from_environ(both).broker_url == REDIS_URL
