"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's ChromeDriver, against ``celery-durable dashboard`` (real uvicorn) on
real workflows run by the session's worker.

Chromium and ChromeDriver come from Debian's packages: the test installs them on first
use (``deploy/install-test-browser.sh``, through tests/integration/prerequisites.py); an install
that fails fails the test, nothing is skipped. No test tool downloads a browser.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from celery_durable import DBOS, SetWorkflowID
from tests.conftest import BROKER_URL, DATABASE_URL
from tests.integration import dashboard_workflows as flows
from tests.integration.prerequisites import CHROMEDRIVER, CHROMIUM, ensure_browser

pytestmark = pytest.mark.usefixtures("worker")

TOKEN = "browser-test-token-0123456789abcdef"
# Without the background-networking flags Chromium calls out at start (this machine's
# network is closed); a fresh profile per run.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_dashboard(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``celery-durable dashboard`` in a subprocess, once it answers."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "celery_durable.cli", "dashboard", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/queues", timeout=2)
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"the dashboard did not start: {log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CELERY_DURABLE_DATABASE_URL": DATABASE_URL,
        "CELERY_DURABLE_BROKER_URL": BROKER_URL,
        "CELERY_DURABLE_DASHBOARD_TOKEN": TOKEN,
        "CELERY_DURABLE_FLOWER_URL": "http://127.0.0.1:5555",
    }
    log = tmp_path / "dashboard.log"
    server = serve_dashboard(port, env, log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Bound to loopback by default; the token never reaches the log.
    assert f"on http://127.0.0.1:{port}" in log.read_text()
    assert TOKEN not in log.read_text()


def chromium(profile: Path) -> WebDriver:
    ensure_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(tmp_path / "profile")
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def test_list_timeline_and_cancel_in_a_real_browser(
    dashboard_url: str, browser: WebDriver, worker: Any
) -> None:
    run = f"browser-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(f"{run}-order"):
        order = DBOS.start_workflow(flows.dash_order, f"{run}-order")
    with SetWorkflowID(f"{run}-waiting"):
        waiting = DBOS.start_workflow(flows.dash_waiting, f"{run}-waiting")
    order.get_result(timeout=30)
    flows.wait_until(lambda: flows.in_backoff(waiting.workflow_id), 30, "the step's backoff")

    # The list shows both, newest first.
    browser.get(f"{dashboard_url}/?id_prefix={run}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#workflows tbody tr[data-workflow-id]")
    assert [row.get_attribute("data-workflow-id") for row in rows] == [
        waiting.workflow_id,
        order.workflow_id,
    ]
    assert "Not signed in" in browser.find_element(By.CSS_SELECTOR, "header").text

    # The retried step's row of the timeline: three attempts, two failed, two waits.
    browser.find_element(By.LINK_TEXT, order.workflow_id).click()
    charge = browser.find_element(By.CSS_SELECTOR, '.tl-row[data-step="2"]')
    assert "dash_charge" in charge.text
    attempts = charge.find_elements(By.CSS_SELECTOR, ".bar[data-attempt]")
    assert [bar.get_attribute("data-attempt") for bar in attempts] == ["1", "2", "3"]
    kinds = [bar.get_attribute("class") for bar in attempts]
    assert kinds == ["bar bar-failed", "bar bar-failed", "bar bar-success"]
    assert len(charge.find_elements(By.CSS_SELECTOR, ".bar-backoff")) == 2
    lefts = [bar.location["x"] for bar in attempts]
    assert lefts == sorted(lefts) and lefts[0] < lefts[2]  # on one time axis, in order
    assert attempts[0].size["width"] > 0
    flower = browser.find_element(By.ID, "flower-link").get_attribute("href")
    assert flower == f"http://127.0.0.1:5555/task/{order.workflow_id}"

    # Log in with the token, then cancel the waiting workflow: confirm, see the result.
    browser.get(f"{dashboard_url}/login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 5).until(lambda b: "Signed in" in b.page_source)
    browser.get(f"{dashboard_url}/workflows/{waiting.workflow_id}")
    assert browser.find_element(By.ID, "workflow-status").text == "PENDING"
    # The failed attempt's traceback opens on a click and stays open as the page refreshes.
    traceback = browser.find_element(By.ID, "traceback-1-1")
    assert not traceback.find_element(By.TAG_NAME, "pre").is_displayed()
    traceback.find_element(By.TAG_NAME, "summary").click()
    assert "in dash_stuck" in traceback.find_element(By.TAG_NAME, "pre").text
    WebDriverWait(browser, 15).until(staleness_of(traceback))
    refreshed = browser.find_element(By.ID, "traceback-1-1")
    assert refreshed.get_attribute("open") is not None
    assert refreshed.find_element(By.TAG_NAME, "pre").is_displayed()
    browser.find_element(By.ID, "cancel").click()
    assert "Cancel workflow" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, "confirm").click()
    assert browser.find_element(By.ID, "result-status").text == "CANCELLED"
    assert "went from PENDING to CANCELLED" in browser.find_element(By.ID, "result").text
    assert waiting.get_status().status == "CANCELLED"


step_runs = threading.Event()
release_step = threading.Event()


@DBOS.step()
def browser_blocks(tag: str) -> str:
    step_runs.set()
    release_step.wait(60)
    return tag


@DBOS.workflow()
def browser_runs_now(tag: str) -> str:
    flows.dash_reserve(tag)
    return browser_blocks(tag)


def test_what_runs_now_hidden_values_and_filters_in_a_real_browser(
    dashboard_url: str, browser: WebDriver, worker: Any
) -> None:
    run = f"browser-{uuid.uuid4().hex[:8]}"
    with SetWorkflowID(f"{run}-running"):
        handle = DBOS.start_workflow(browser_runs_now, run)
    try:
        assert step_runs.wait(30)
        # Not signed in: the values are hidden, and the page says so outside the boxes.
        browser.get(f"{dashboard_url}/workflows/{handle.workflow_id}")
        hidden = browser.find_element(By.ID, "input")
        assert hidden.tag_name == "p" and "Values are hidden" in hidden.text
        assert not browser.find_elements(By.XPATH, "//pre[contains(., 'hidden')]")
        # The running step: the facts say so, the timeline draws it in the running colour.
        running = browser.find_element(By.ID, "running")
        assert running.text.startswith("after step 1, since ") and " on " in running.text
        bar = browser.find_element(By.CSS_SELECTOR, ".timeline .bar-running")
        assert bar.is_displayed() and bar.size["width"] > 0
        done = browser.find_element(By.CSS_SELECTOR, ".timeline .bar-success")
        assert bar.value_of_css_property("background-image") != done.value_of_css_property(
            "background-image"
        ) or bar.value_of_css_property("background-color") != done.value_of_css_property(
            "background-color"
        )
        # Still there after the page refreshes itself.
        WebDriverWait(browser, 15).until(staleness_of(bar))
        assert browser.find_element(By.CSS_SELECTOR, ".timeline .bar-running").is_displayed()
    finally:
        release_step.set()
    assert handle.get_result(timeout=30) == run

    # The list's filters: empty time filters read as empty; scheduled runs can be hidden.
    browser.get(f"{dashboard_url}/?id_prefix={run}")
    since = browser.find_element(By.NAME, "since")
    assert since.get_attribute("value") == "" and since.get_attribute("placeholder") == "any time"
    browser.find_element(By.ID, "hide-scheduled").click()
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    WebDriverWait(browser, 5).until(lambda b: "scheduled=hide" in b.current_url)
    assert browser.find_element(By.ID, "hide-scheduled").is_selected()
    rows = browser.find_elements(By.CSS_SELECTOR, "#workflows tbody tr[data-workflow-id]")
    assert [row.get_attribute("data-workflow-id") for row in rows] == [handle.workflow_id]
