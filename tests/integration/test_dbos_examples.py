"""DBOS programs from DBOS's documentation, in our words, run with only their imports
changed (``worker/examples/dbos_programs/``): the widget store, a queue-based document
pipeline and a class-based app.

Each runs as its own process (DBOS is process-wide), as its author runs it:
``DBOS(config=...)`` without ``celery=``, ``DBOS.launch()`` running the workflows in
the program's process, on real PostgreSQL (databases of its own, dropped afterwards)
and a real broker (Redis database 13, as tests/integration/test_porting.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from tests.conftest import DATABASE_URL, admin_url, recreate_database
from tests.integration.subprocesses import ROOT
from tests.integration.test_porting import PROGRAM_BROKER

PROGRAMS = ROOT / "worker" / "examples" / "dbos_programs"


def _database(suffix: str) -> str:
    url = make_url(DATABASE_URL)
    return url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """The programs' databases: DBOS's (created by ``DBOS.launch()``) and the shop's."""
    urls = {"system": _database("dbos_program"), "shop": _database("dbos_program_shop")}
    recreate_database(urls["shop"])
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()
    yield urls
    with psycopg.connect(admin_url(DATABASE_URL), autocommit=True) as connection:
        for url in urls.values():
            connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    redis.Redis.from_url(PROGRAM_BROKER).flushdb()


def run_program(script: str, databases: dict[str, str], **extra: str) -> Any:
    """Runs ``script`` (which imports a program) in a process of its own; the JSON of
    its last output line."""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": PROGRAM_BROKER,
        "PYTHONPATH": f"{PROGRAMS}{os.pathsep}{ROOT}",
        "WIDGET_STORE_SYSTEM_DATABASE_URL": databases["system"],
        "WIDGET_STORE_DATABASE_URL": databases["shop"],
        "DOCUMENT_PIPELINE_DATABASE_URL": databases["system"],
        "WAREHOUSES_DATABASE_URL": databases["system"],
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_widget_store_sells_dispatches_cancels_and_sells_out(
    databases: dict[str, str],
) -> None:
    outcome = run_program(
        """
        import json
        from celery_durable import DBOS
        import widget_store as shop

        shop.open_shop(stock=2)
        # A checkout that is paid: dispatched by a workflow on the queue.
        paid = shop.start_checkout("checkout-paid")
        again = shop.start_checkout("checkout-paid")  # the same key: the same checkout
        paid_order = shop.confirm_payment(paid, "paid")
        dispatched = DBOS.retrieve_workflow(shop.dispatch_id(paid_order)).get_result(timeout=60)
        dispatches = DBOS.list_workflows(queue_name=shop.DISPATCH_QUEUE)
        # A checkout whose payment fails: its widget goes back on the shelf.
        failed = shop.start_checkout("checkout-failed")
        failed_order = shop.confirm_payment(failed, "failed")
        # Two checkouts take the last widgets; a third finds none.
        shop.start_checkout("checkout-last")
        sold_out = shop.start_checkout("checkout-sold-out")
        sold_out_result = DBOS.retrieve_workflow("checkout-sold-out").get_result(timeout=30)
        print(json.dumps({
            "paid": [paid, again, shop.order(paid_order), len(dispatches), dispatched],
            "failed": [failed, shop.order(failed_order)],
            "sold_out": [sold_out, sold_out_result],
            "inventory": shop.inventory(),
            "steps": [s["function_name"] for s in DBOS.list_workflow_steps(paid)],
        }))
        DBOS.destroy(workflow_completion_timeout_sec=10)
        """,
        databases,
    )
    paid, again, paid_order, dispatches, dispatched = outcome["paid"]
    assert paid == again == "checkout-paid"
    assert paid_order["status"] == "dispatched"
    assert paid_order["progress_remaining"] == 0
    assert (dispatches, dispatched) == (1, None)
    assert outcome["failed"][0] == "checkout-failed"
    assert outcome["failed"][1]["status"] == "cancelled"
    assert outcome["sold_out"] == [None, None]  # no payment asked, no order made
    assert outcome["inventory"] == 0  # 2 widgets: one dispatched, one reserved, none back
    assert outcome["steps"][:2] == ["create_order", "reserve_widget"]
    assert "set_order_status" in outcome["steps"]


def test_the_document_pipeline_fans_out_over_its_queue(databases: dict[str, str]) -> None:
    outcome = run_program(
        """
        import json
        from celery_durable import DBOS
        import document_pipeline as pipeline

        pipeline.LIBRARY.update({
            f"doc://{n}": " ".join(["durable"] * (n + 1) + ["queue"] * 6) for n in range(5)
        })
        pipeline.start()
        urls = [f"doc://{n}" for n in range(5)] + ["doc://missing"]
        result = pipeline.index_documents(urls)
        queued = DBOS.list_workflows(queue_name=pipeline.QUEUE)
        queue = DBOS.retrieve_queue(pipeline.QUEUE)
        print(json.dumps({
            "result": result,
            "queued": sorted(w.status for w in queued),
            "pages": DBOS.get_event(queued[0].workflow_id, pipeline.PAGES_DONE),
            "limit": queue.concurrency,
        }))
        DBOS.destroy(workflow_completion_timeout_sec=10)
        """,
        databases,
    )
    indexed = outcome["result"]["indexed"]
    assert sorted(indexed) == [f"doc://{n}" for n in range(5)]
    assert indexed["doc://3"] == {"durable": 4, "queue": 6}
    assert outcome["result"]["failed"] == ["doc://missing"]
    assert outcome["queued"] == ["ERROR"] + ["SUCCESS"] * 5
    assert outcome["pages"] in (2, 3)
    assert outcome["limit"] == 2


def test_the_class_based_app_runs_its_instances_workflows(databases: dict[str, str]) -> None:
    outcome = run_program(
        """
        import json
        from celery_durable import DBOS
        import warehouses

        DBOS.launch()
        restocked = warehouses.restock_everywhere()
        statuses = DBOS.list_workflows(name="Warehouse.restock")
        print(json.dumps({
            "restocked": restocked,
            "names": warehouses.Warehouse.names(),
            "bolts": warehouses.Warehouse.total("bolts"),
            "audit": warehouses.Auditor.audit("south"),
            "instances": sorted([s.class_name, s.config_name] for s in statuses),
        }))
        DBOS.destroy(workflow_completion_timeout_sec=10)
        """,
        databases,
    )
    assert outcome["restocked"] == {
        "north": ["north: 7 bolts from acme"],
        "south": ["south: 4 nuts from globex"],
    }
    assert outcome["names"] == ["north", "south"]
    assert outcome["bolts"] == 60
    assert outcome["audit"] == {"bolts": 50, "nuts": 5}
    assert outcome["instances"] == [["Warehouse", "north"], ["Warehouse", "south"]]
