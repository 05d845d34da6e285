"""The dashboard's JSON API, pages, actions, security and /metrics (Starlette's
TestClient in front of the real app), on real workflows run by the session's worker."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from celery_durable import DBOS, SetWorkflowID
from celery_durable.dashboard import DashboardSettings, check_schema, create_app
from celery_durable.dashboard.documents import HIDDEN
from celery_durable.dashboard.security import CSRF_COOKIE, SESSION_COOKIE
from celery_durable.error import DBOSSchemaMissingError
from tests.conftest import BROKER_URL, DATABASE_URL, TEST_QUEUE, admin_url, recreate_database
from tests.integration import dashboard_workflows as flows

pytestmark = pytest.mark.usefixtures("worker")

TOKEN = "a-test-token-of-32-characters-xx"
RUN = uuid.uuid4().hex[:8]


class Ran:
    """The workflows every test here reads: run once, on the real worker."""

    def __init__(self) -> None:
        self.order = f"dash-{RUN}-order"
        self.declined = f"dash-{RUN}-declined"
        self.parent = f"dash-{RUN}-parent"
        self.waiting = f"dash-{RUN}-waiting"
        handles = []
        for workflow_id, function in [
            (self.order, flows.dash_order),
            (self.declined, flows.dash_declined),
            (self.parent, flows.dash_parent),
            (self.waiting, flows.dash_waiting),
        ]:
            with SetWorkflowID(workflow_id):
                handles.append(DBOS.start_workflow(function, workflow_id))
        assert handles[0].get_result(timeout=30) == f"order {self.order} completed"
        with pytest.raises(Exception, match="exceeded its maximum of 2 retries"):
            handles[1].get_result(timeout=30)
        assert handles[2].get_result(timeout=30) == f"mailed {self.parent}-child"
        flows.wait_until(lambda: flows.in_backoff(self.waiting), 30, "the step's backoff")


@pytest.fixture(scope="module")
def ran(worker: Any) -> Ran:
    return Ran()


def _app(**settings: Any) -> TestClient:
    defaults: dict[str, Any] = {"database_url": DATABASE_URL, "broker_url": BROKER_URL}
    return TestClient(create_app(DashboardSettings(**(defaults | settings))))


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    """A dashboard with a token; requests carry it unless a test drops the header."""
    with _app(token=TOKEN) as client:
        client.headers["authorization"] = f"Bearer {TOKEN}"
        yield client


def test_the_list_filters_counts_and_pages(api: TestClient, ran: Ran) -> None:
    found = api.get("/api/workflows", params={"id_prefix": f"dash-{RUN}-"}).json()
    ids = [w["workflow_id"] for w in found["workflows"]]
    child = f"{ran.parent}-1"
    assert set(ids) == {ran.order, ran.declined, ran.parent, child, ran.waiting}
    assert found["counts"] == {"SUCCESS": 3, "ERROR": 1, "PENDING": 1}
    assert found["total"] == 5
    assert ids.index(child) < ids.index(ran.parent)  # newest first

    errors = api.get("/api/workflows", params={"id_prefix": f"dash-{RUN}", "status": "ERROR"})
    assert [w["workflow_id"] for w in errors.json()["workflows"]] == [ran.declined]
    assert errors.json()["total"] == 1 and errors.json()["counts"]["SUCCESS"] == 3
    by_name = api.get("/api/workflows", params={"name": "dash_order", "id_prefix": ran.order})
    assert [w["name"] for w in by_name.json()["workflows"]] == ["dash_order"]
    assert api.get("/api/workflows", params={"queue": "nope"}).json()["total"] == 0
    assert api.get("/api/workflows", params={"version": "nope"}).json()["total"] == 0
    assert api.get("/api/workflows", params={"user": "nobody"}).json()["total"] == 0
    future = api.get("/api/workflows", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["workflows"] == [] and future["total"] == 0

    pages = [
        api.get("/api/workflows", params={"id_prefix": f"dash-{RUN}-", "limit": 3, "offset": o})
        for o in (0, 3)
    ]
    paged = [w["workflow_id"] for page in pages for w in page.json()["workflows"]]
    assert paged == ids and len(pages[1].json()["workflows"]) == 2


def test_steps_show_every_attempt_with_its_backoff(api: TestClient, ran: Ran) -> None:
    steps = api.get(f"/api/workflows/{ran.order}/steps").json()
    assert [(s["function_id"], s["function_name"]) for s in steps][:2] == [
        (1, "dash_reserve"),
        (2, "dash_charge"),
    ]
    reserve, charge = steps[0], steps[1]
    assert len(reserve["attempt_history"]) == 1 and reserve["attempt_history"][0]["error"] is None
    attempts = charge["attempt_history"]
    assert [a["outcome"] for a in attempts] == ["failed", "failed", "success"]
    # Attempt n of the step's budget (max_attempts=4), as the worker's log says it.
    assert charge["max_attempts"] == 4
    assert [a["label"] for a in attempts] == ["1/4", "2/4", "3/4"]
    page = api.get(f"/workflows/{ran.order}").text
    assert "<td>3/4</td>" in page and "<td>3/3</td>" not in page
    assert [a["error"]["type"] if a["error"] else None for a in attempts] == [
        "ConnectionError",
        "ConnectionError",
        None,
    ]
    assert "attempt 1" in attempts[0]["error"]["message"]
    # Backoff 0.3 s, then 0.6 s; each attempt sleeps 50 ms.
    assert attempts[1]["waited_before_ms"] >= 300 and attempts[2]["waited_before_ms"] >= 600
    assert all(a["duration_ms"] >= 50 for a in attempts)
    assert charge["status"] == "success" and charge["output"] == {
        "order": ran.order,
        "charged": True,
    }

    declined = api.get(f"/api/workflows/{ran.declined}/steps").json()[1]
    assert [a["outcome"] for a in declined["attempt_history"]] == ["failed", "failed"]
    assert declined["status"] == "error"
    assert declined["error"]["type"] == "DBOSMaxStepRetriesExceeded"


def test_one_workflow_with_events_streams_children_and_its_error(api: TestClient, ran: Ran) -> None:
    order = api.get(f"/api/workflows/{ran.order}").json()
    assert order["status"] == "SUCCESS" and order["input"] == {"args": [ran.order], "kwargs": {}}
    assert order["output"] == f"order {ran.order} completed"
    assert order["celery_task_id"] == ran.order
    assert order["events"] == {"stage": "charged"}
    assert order["streams"] == {"progress": [{"order": ran.order, "done": 2}]}

    parent = api.get(f"/api/workflows/{ran.parent}").json()
    assert [c["workflow_id"] for c in parent["children"]] == [f"{ran.parent}-1"]

    declined = api.get(f"/api/workflows/{ran.declined}").json()
    assert declined["status"] == "ERROR"
    assert declined["error"]["type"] == "DBOSMaxStepRetriesExceeded"
    assert [e["message"] for e in declined["error"]["attempt_errors"]] == [
        f"card declined for {ran.declined}"
    ] * 2


def test_failed_attempts_and_a_failed_workflow_show_their_tracebacks(
    api: TestClient, ran: Ran
) -> None:
    charge = api.get(f"/api/workflows/{ran.order}/steps").json()[1]
    texts = [a["error"]["traceback"] if a["error"] else None for a in charge["attempt_history"]]
    assert len(texts) == 3 and texts[2] is None
    for text in texts[:2]:
        assert text.startswith("Traceback (most recent call last):")
        assert "in dash_charge" in text and "raise ConnectionError(" in text
    page = api.get(f"/workflows/{ran.order}").text
    assert page.count('<details class="traceback"') == 2
    assert 'id="traceback-2-1"' in page and 'id="traceback-2-2"' in page

    error = api.get(f"/api/workflows/{ran.declined}").json()["error"]
    assert "in dash_declined" in error["traceback"]
    assert "ValueError: card declined for" in error["traceback"]  # the last attempt: the cause
    assert [("in dash_always_fails" in e["traceback"]) for e in error["attempt_errors"]] == [
        True,
        True,
    ]
    # The workflow's error, each of its attempts' errors, and the step's two attempts.
    assert api.get(f"/workflows/{ran.declined}").text.count('<details class="traceback"') == 5


@pytest.mark.parametrize(
    ("path", "params", "status", "mentions"),
    [
        ("/api/workflows/no-such-workflow", {}, 404, "no-such-workflow"),
        ("/api/workflows/no-such-workflow/steps", {}, 404, "no-such-workflow"),
        ("/workflows/no-such-workflow", {}, 404, "no-such-workflow"),
        ("/api/workflows/" + "x" * 300, {}, 400, "workflow id"),
        ("/api/workflows", {"status": "DONE"}, 400, "unknown status 'DONE'"),
        ("/api/workflows", {"since": "yesterday"}, 400, "ISO-8601"),
        ("/api/workflows", {"limit": "0"}, 400, "limit"),
        ("/api/workflows", {"offset": "-1"}, 400, "offset"),
        ("/api/workflows", {"colour": "red"}, 400, "unknown filter 'colour'"),
        ("/api/workflows", {"since": "2030-01-01", "until": "2020-01-01"}, 400, "after"),
        ("/", {"status": "DONE"}, 400, "unknown status"),
        ("/workflows/anything/launch", {}, 400, "unknown action"),
        ("/workflows/anything/fork", {"step": "x"}, 400, "step"),
    ],
)
def test_bad_requests_are_clear_4xx(
    api: TestClient, path: str, params: dict[str, str], status: int, mentions: str
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert mentions in response.text


def test_an_action_on_an_unknown_workflow_is_404(api: TestClient) -> None:
    response = api.post("/api/workflows/no-such-workflow/cancel")
    assert response.status_code == 404 and "no-such-workflow" in response.json()["error"]
    assert api.post("/api/workflows/x/launch").status_code == 400
    bad_step = api.post("/api/workflows/x/fork", json={"start_step": "two"})
    assert bad_step.status_code == 400 and "start_step" in bad_step.json()["error"]


def test_actions_need_authentication_and_csrf(ran: Ran) -> None:
    with SetWorkflowID(f"dash-{RUN}-to-cancel"):
        handle = DBOS.start_workflow(flows.dash_waiting, "c")
    flows.wait_until(lambda: flows.in_backoff(handle.workflow_id), 30, "the step's backoff")
    path = f"/workflows/{handle.workflow_id}/cancel"

    with _app() as read_only:
        refused = read_only.post(f"/api{path}")
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
        assert "Read-only" in read_only.get("/").text

    with _app(token=TOKEN) as browser:
        assert browser.post(f"/api{path}").status_code == 401
        login = browser.get("/login")
        csrf = login.cookies.get(CSRF_COOKIE) or browser.cookies.get(CSRF_COOKIE)
        assert csrf
        wrong = browser.post("/login", data={"csrf_token": csrf, "token": "not-the-token"})
        assert wrong.status_code == 401
        assert browser.post("/login", data={"token": TOKEN}).status_code == 403  # no CSRF
        browser.post("/login", data={"csrf_token": csrf, "token": TOKEN}, follow_redirects=False)
        assert browser.cookies.get(SESSION_COOKIE) not in (None, TOKEN)
        # Logged in by cookie: the same form without its CSRF token is refused.
        assert browser.post(path, data={}).status_code == 403
        assert browser.post(path, data={"csrf_token": "forged"}).status_code == 403
        assert handle.get_status().status == "PENDING"
        done = browser.post(path, data={"csrf_token": csrf})
        assert done.status_code == 200 and "CANCELLED" in done.text
    assert handle.get_status().status == "CANCELLED"


def test_http_basic_allows_actions(ran: Ran) -> None:
    with _app(basic_username="ops", basic_password="s3cret-pass") as basic:
        assert basic.get("/login").headers["www-authenticate"].startswith("Basic")
        good = base64.b64encode(b"ops:s3cret-pass").decode()
        bad = base64.b64encode(b"ops:wrong").decode()
        target = f"/api/workflows/{ran.declined}/resume"
        assert basic.post(target, headers={"authorization": f"Basic {bad}"}).status_code == 401
        csrf = basic.get("/").cookies.get(CSRF_COOKIE) or basic.cookies.get(CSRF_COOKIE)
        headers = {"authorization": f"Basic {good}", "x-csrf-token": str(csrf)}
        resumed = basic.post(target, headers=headers)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["action"] == "resume"


def test_fork_from_a_chosen_step_through_the_api(api: TestClient, ran: Ran) -> None:
    forked = api.post(f"/api/workflows/{ran.order}/fork", json={"start_step": 3})
    assert forked.status_code == 200, forked.text
    new_id = forked.json()["forked_workflow_id"]
    assert DBOS.retrieve_workflow(new_id).get_result(timeout=30) == f"order {ran.order} completed"
    steps = api.get(f"/api/workflows/{new_id}/steps").json()
    # Steps 1 and 2 were copied (charge's three attempts included); 3 onwards ran again.
    assert len(steps[1]["attempt_history"]) == 3


def test_values_are_hidden_from_visitors_who_have_not_logged_in(ran: Ran) -> None:
    with _app(token=TOKEN) as visitor:
        document = visitor.get(f"/api/workflows/{ran.order}").json()
        assert document["input"] == HIDDEN and document["output"] == HIDDEN
        assert document["events"] == {"stage": HIDDEN} and document["streams"] == {
            "progress": HIDDEN
        }
        steps = visitor.get(f"/api/workflows/{ran.order}/steps").json()
        assert steps[1]["output"] == HIDDEN
        assert steps[1]["attempt_history"][0]["error"]["message"] == HIDDEN
        assert steps[1]["attempt_history"][0]["error"]["traceback"] == HIDDEN
        page = visitor.get(f"/workflows/{ran.order}").text
        assert "charged" not in page and "unreachable" not in page and "Log in" in page
        # Said outside the JSON boxes, not as a quoted value that looks like input.
        assert document["values_hidden"] is True
        assert HIDDEN not in page
        assert '<p class="values-hidden muted" id="input">Values are hidden' in page
        assert "Traceback (most recent call last)" not in page
        declined = visitor.get(f"/api/workflows/{ran.declined}").json()["error"]
        assert declined["traceback"] == HIDDEN
        assert {e["traceback"] for e in declined["attempt_errors"]} == {HIDDEN}
        declined_page = visitor.get(f"/workflows/{ran.declined}").text
        assert "Traceback (most recent call last)" not in declined_page
        assert "dash_always_fails(order)" not in declined_page
        assert document["status"] == "SUCCESS" and len(steps) == 6


def test_pages_render_the_list_the_timeline_and_the_queues(api: TestClient, ran: Ran) -> None:
    listing = api.get("/", params={"id_prefix": f"dash-{RUN}-"})
    assert listing.status_code == 200 and ran.order in listing.text
    assert "content-security-policy" in listing.headers
    page = api.get(f"/workflows/{ran.order}").text
    assert page.count('class="bar bar-failed"') == 2 and page.count('data-attempt="3"') >= 1
    assert page.count('class="bar bar-backoff"') == 2
    flower = _app(flower_url="http://127.0.0.1:5555").get(f"/workflows/{ran.order}").text
    assert f'href="http://127.0.0.1:5555/task/{ran.order}"' in flower
    queues = api.get("/queues")
    assert queues.status_code == 200 and TEST_QUEUE in queues.text


def test_queues_and_metrics_count_from_the_database(api: TestClient, ran: Ran) -> None:
    queues = {q["queue_name"]: q for q in api.get("/api/queues").json()["queues"]}
    ours = queues[TEST_QUEUE]
    assert ours["pending"] >= 1 and ours["enqueued"] >= 0
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'celery_durable_workflows{name="dash_declined",status="ERROR"}' in text
    # A gauge, named as Prometheus names gauges: no counter's _total suffix.
    assert "# TYPE celery_durable_workflows gauge" in text
    assert "_total" not in text
    assert f'celery_durable_queue_depth{{queue="{TEST_QUEUE}",status="PENDING"}}' in text
    assert RUN not in text  # labels are names, never ids


def test_an_unmigrated_database_is_a_clear_error_and_stays_unmigrated() -> None:
    empty = DATABASE_URL.rsplit("/", 1)[0] + "/cd_dash_unmigrated"
    recreate_database(empty)
    app = create_app(DashboardSettings(database_url=empty))
    with pytest.raises(DBOSSchemaMissingError, match="celery-durable migrate"):
        check_schema(app)
    with TestClient(app) as client:
        response = client.get("/api/workflows")
        assert response.status_code == 503 and "celery-durable migrate" in response.text
        assert client.get("/").status_code == 503
    with psycopg.connect(admin_url(empty).rsplit("/", 1)[0] + "/cd_dash_unmigrated") as db:
        schemas = db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'celery_durable'")
        assert schemas.fetchone() == (0,)


def test_the_command_refuses_an_unmigrated_database_and_a_short_token() -> None:
    empty = DATABASE_URL.rsplit("/", 1)[0] + "/cd_dash_unmigrated"
    recreate_database(empty)
    env = {**os.environ, "CELERY_DURABLE_DATABASE_URL": empty}
    command = [sys.executable, "-m", "celery_durable.cli", "dashboard", "--port", "1"]
    unmigrated = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert unmigrated.returncode == 1 and "celery-durable migrate" in unmigrated.stderr
    env["CELERY_DURABLE_DASHBOARD_TOKEN"] = "short"
    short = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "at least 16 characters" in short.stderr
    assert "short" not in short.stderr.replace("at least", "")


def test_a_fork_links_to_its_original_and_back(api: TestClient, ran: Ran) -> None:
    forked = api.post(f"/api/workflows/{ran.order}/fork", json={"start_step": 2})
    assert forked.status_code == 200, forked.text
    new_id = forked.json()["forked_workflow_id"]
    assert DBOS.retrieve_workflow(new_id).get_result(timeout=30) == f"order {ran.order} completed"
    assert api.get(f"/api/workflows/{new_id}").json()["forked_from"] == ran.order
    assert new_id in [
        f["workflow_id"] for f in api.get(f"/api/workflows/{ran.order}").json()["forks"]
    ]
    assert api.get(f"/api/workflows/{ran.declined}").json()["forked_from"] is None
    page = api.get(f"/workflows/{new_id}").text
    assert f'<a id="forked-from" href="/workflows/{ran.order}">' in page
    assert f'href="/workflows/{new_id}"' in api.get(f"/workflows/{ran.order}").text


def test_scheduled_runs_can_be_left_out_of_the_list(api: TestClient) -> None:
    scheduled, plain = f"sched-dash-{RUN}-tick", f"dash-{RUN}-unscheduled"
    for workflow_id in (scheduled, plain):
        with SetWorkflowID(workflow_id):
            assert DBOS.start_workflow(flows.dash_child, "s").get_result(timeout=30)

    def listed(**params: str) -> set[str]:
        found = api.get("/api/workflows", params={"name": "dash_child", "limit": "500", **params})
        assert found.status_code == 200, found.text
        return {w["workflow_id"] for w in found.json()["workflows"]}

    assert {scheduled, plain} <= listed()
    hidden = listed(scheduled="hide")
    assert plain in hidden and scheduled not in hidden
    assert not any(w.startswith("sched-") for w in hidden)
    assert api.get("/api/workflows", params={"scheduled": "only"}).status_code == 400
    page = api.get("/", params={"name": "dash_child", "scheduled": "hide"}).text
    assert 'id="hide-scheduled" checked' in page and scheduled not in page


def test_the_since_and_until_placeholders_do_not_look_like_filters(api: TestClient) -> None:
    page = api.get("/").text
    assert 'name="since" value="" placeholder="any time"' in page
    assert 'name="until" value="" placeholder="any time"' in page
    assert "2025-01-31T12:00Z" not in page.split('name="since"')[1].split(">")[0]


first_attempt_runs = threading.Event()
second_attempt_runs = threading.Event()
release_first = threading.Event()
release_second = threading.Event()
dash_calls: Counter[str] = Counter()


@DBOS.step()
def dash_blocks(tag: str) -> str:
    first_attempt_runs.set()
    release_first.wait(30)
    return tag


@DBOS.step(max_attempts=5, interval_seconds=0.2)
def dash_retries_then_blocks(tag: str) -> str:
    dash_calls[tag] += 1
    if dash_calls[tag] == 1:
        raise ConnectionError("first attempt")
    second_attempt_runs.set()
    release_second.wait(30)
    return tag


@DBOS.workflow()
def dash_runs_now(tag: str) -> list[str]:
    return [flows.dash_reserve(tag), dash_blocks(tag), dash_retries_then_blocks(tag)]


def test_what_runs_now_is_shown(api: TestClient) -> None:
    workflow_id = f"dash-{RUN}-runs-now"
    with SetWorkflowID(workflow_id):
        handle = DBOS.start_workflow(dash_runs_now, workflow_id)
    try:
        assert first_attempt_runs.wait(30)
        document = api.get(f"/api/workflows/{workflow_id}").json()
        running = document["running"]
        assert running is not None, document
        assert (running["after_step"], running["step"]) == (1, None)
        assert running["executor_id"] == document["executor_id"] is not None
        page = api.get(f"/workflows/{workflow_id}").text
        assert 'id="running">after step 1, since' in page
        assert 'class="bar bar-running"' in page  # the timeline's running row

        release_first.set()
        assert second_attempt_runs.wait(30)
        steps = api.get(f"/api/workflows/{workflow_id}/steps").json()
        assert steps[2]["status"] == "running"
        last = steps[2]["attempt_history"][-1]
        assert (last["label"], last["outcome"], last["completed_at_epoch_ms"]) == (
            "2/5",
            "running",
            None,
        )
        page = api.get(f"/workflows/{workflow_id}").text
        assert 'id="running">step 3, attempt 2/5, since' in page
        assert "next attempt due" not in page
        assert 'class="bar bar-running" data-attempt="2"' in page
    finally:
        release_first.set()
        release_second.set()
    assert handle.get_result(timeout=30) == [f"reserved {workflow_id}", workflow_id, workflow_id]
    assert api.get(f"/api/workflows/{workflow_id}").json()["running"] is None


def test_a_cancelled_workflow_shows_no_next_attempt(api: TestClient) -> None:
    with SetWorkflowID(f"dash-{RUN}-cancelled-in-backoff"):
        handle = DBOS.start_workflow(flows.dash_waiting, "n")
    flows.wait_until(lambda: flows.in_backoff(handle.workflow_id), 30, "the step's backoff")
    assert "next attempt due" in api.get(f"/workflows/{handle.workflow_id}").text
    DBOS.cancel_workflow(handle.workflow_id)
    (step,) = api.get(f"/api/workflows/{handle.workflow_id}/steps").json()
    assert step["status"] == "stopped"
    page = api.get(f"/workflows/{handle.workflow_id}").text
    assert "next attempt due" not in page and "no next attempt: the workflow is CANCELLED" in page


def test_resuming_a_failed_workflow_warns_and_points_to_fork(api: TestClient, ran: Ran) -> None:
    failed = f"dash-{RUN}-failed-to-resume"
    with SetWorkflowID(failed):
        handle = DBOS.start_workflow(flows.dash_declined, failed)
    with pytest.raises(Exception, match="exceeded its maximum of 2 retries"):
        handle.get_result(timeout=30)
    page = api.get(f"/workflows/{failed}/resume").text
    assert 'id="resume-warning"' in page and "replays its recorded error" in page
    assert f'href="/workflows/{failed}/fork?step=1"' in page
    assert 'id="resume-warning"' not in api.get(f"/workflows/{ran.order}/resume").text
