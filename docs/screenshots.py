"""Screenshots of the dashboard for docs/dashboard.md: ``docs/images/dashboard-*.png``.

Runs real workflows (one with a step that fails twice before it succeeds) on a real
Celery worker against PostgreSQL and Redis, serves the dashboard with uvicorn and takes
the pictures with Debian's headless Chromium (``deploy/install-test-browser.sh``):

    .venv/bin/python docs/screenshots.py [--database-url URL] [--broker-url URL]

The database named by ``--database-url`` is dropped and created again.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from celery import Celery
from celery.contrib.testing.worker import start_worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from celery_durable import DBOS, SetWorkflowID  # noqa: E402
from celery_durable.dashboard import DashboardSettings, create_app  # noqa: E402
from tests.conftest import recreate_database  # noqa: E402
from tests.integration.test_dashboard_browser import chromium, free_port  # noqa: E402

QUEUE = "orders"
TOKEN = "screenshots-token-0123456789abcdef"
failures: dict[str, int] = {}


def define_workflows() -> dict[str, Any]:
    @DBOS.step(name="reserve_stock")
    def reserve_stock(order: str) -> dict[str, object]:
        time.sleep(0.12)
        return {"order": order, "sku": "A-113", "reserved": 2}

    @DBOS.step(max_attempts=5, interval_seconds=0.4, backoff_rate=2.0, name="charge_card")
    def charge_card(order: str, flaky: int) -> dict[str, object]:
        time.sleep(0.15)
        failures[order] = failures.get(order, 0) + 1
        if failures[order] <= flaky:
            raise ConnectionError(f"payment gateway timed out (try {failures[order]})")
        return {"order": order, "amount_eur": 42.5, "charge_id": f"ch_{order}"}

    @DBOS.step(name="send_receipt")
    def send_receipt(order: str) -> str:
        time.sleep(0.06)
        return f"receipt sent for {order}"

    @DBOS.workflow(name="process_order")
    def process_order(order: str, flaky: int = 0) -> str:
        reserve_stock(order)
        charge_card(order, flaky)
        DBOS.set_event("stage", "charged")
        send_receipt(order)
        return f"order {order} completed"

    @DBOS.step(max_attempts=3, interval_seconds=0.2, name="call_carrier")
    def call_carrier(order: str) -> None:
        time.sleep(0.05)
        raise RuntimeError(f"carrier rejected the address of {order}")

    @DBOS.workflow(name="ship_order")
    def ship_order(order: str) -> None:
        reserve_stock(order)
        call_carrier(order)

    @DBOS.step(max_attempts=3, interval_seconds=600.0, name="wait_for_warehouse")
    def wait_for_warehouse(order: str) -> None:
        raise TimeoutError(f"warehouse busy for {order}")

    @DBOS.workflow(name="restock")
    def restock(order: str) -> None:
        wait_for_warehouse(order)

    return {"process_order": process_order, "ship_order": ship_order, "restock": restock}


def run_workflows(flows: dict[str, Any]) -> str:
    """Starts the workflows, waits for the finished ones; returns the retried one's id."""
    process_order, ship_order, restock = (
        flows["process_order"],
        flows["ship_order"],
        flows["restock"],
    )
    handles = []
    for number, flaky in [(1001, 0), (1002, 0), (1003, 2), (1004, 0), (1005, 1)]:
        with SetWorkflowID(f"order-{number}"):
            handles.append(DBOS.start_workflow(process_order, f"o-{number}", flaky))
        time.sleep(0.05)
    with SetWorkflowID("ship-2001"):
        handles.append(DBOS.start_workflow(ship_order, "o-2001"))
    with SetWorkflowID("restock-3001"):
        DBOS.start_workflow(restock, "o-3001")
    for handle in handles:
        with contextlib.suppress(Exception):  # ship-2001 fails, as it should
            handle.get_result(timeout=60)
    time.sleep(0.5)
    return "order-1003"


def shoot(url: str, retried: str, images: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        browser = chromium(Path(profile))
        try:
            browser.set_window_size(1400, 800)
            browser.get(f"{url}/login")
            browser.find_element("id", "token").send_keys(TOKEN)
            browser.find_element("id", "login").click()
            time.sleep(0.3)
            browser.get(url + "/")
            browser.save_screenshot(str(images / "dashboard-workflows.png"))
            browser.get(f"{url}/workflows/{retried}")
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(1400, min(int(height) + 140, 1600))
            browser.save_screenshot(str(images / "dashboard-workflow.png"))
        finally:
            browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/celery_durable_screens"
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    recreate_database(args.database_url)
    app = Celery("shop", broker=args.broker_url)
    app.conf.update(task_default_queue=QUEUE, worker_hijack_root_logger=False)
    DBOS(celery=app, config={"name": "shop", "system_database_url": args.database_url})
    flows = define_workflows()
    DBOS.launch()
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="ERROR",
        queues=[QUEUE],
    ):
        retried = run_workflows(flows)
        settings = DashboardSettings(
            database_url=args.database_url,
            broker_url=args.broker_url,
            token=TOKEN,
            flower_url="http://127.0.0.1:5555",
            refresh_seconds=0,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        shoot(f"http://127.0.0.1:{port}", retried, images)
        server.should_exit = True
        thread.join(timeout=10)
    DBOS.destroy()
    print(f"wrote {images / 'dashboard-workflows.png'} and {images / 'dashboard-workflow.png'}")


if __name__ == "__main__":
    main()
