"""The HTML pages: workflows, one workflow, queues, confirmations, login."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from celery_durable.core.clock import now_epoch_ms
from celery_durable.dashboard import actions, filters, reading, security
from celery_durable.dashboard.filters import BadRequest
from celery_durable.dashboard.rendering import dashboard, page


def routes() -> list[Route]:
    return [
        Route("/", workflows_page, name="workflows"),
        Route("/workflows/{workflow_id}", workflow_page, name="workflow"),
        Route("/workflows/{workflow_id}/{action}", confirm_page, name="confirm"),
        Route("/workflows/{workflow_id}/{action}", action_page, methods=["POST"]),
        Route("/queues", queues_page, name="queues"),
        Route("/login", login_page, name="login"),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]


def workflows_page(request: Request) -> Response:
    asked = filters.listing(request.query_params, request.query_params.getlist("status"))
    found = reading.listing(dashboard(request).client, asked)
    return page(
        request,
        "workflows.html",
        {
            "found": found,
            "asked": asked,
            "params": request.query_params,
            "statuses": filters.STATUSES,
        },
    )


def workflow_page(request: Request) -> Response:
    workflow_id = filters.workflow_id(request.path_params["workflow_id"])
    client = dashboard(request).client
    reveal = security.access(request, dashboard(request).settings).reveal
    document = reading.workflow(client, workflow_id, reveal)
    steps = reading.steps(client, workflow_id, reveal)
    return page(
        request,
        "workflow.html",
        {
            "workflow": document,
            "steps": steps,
            "timeline": reading.workflow_timeline(document, steps),
            "terminal": document["status"] not in ("ENQUEUED", "PENDING", "DELAYED"),
            "now_ms": now_epoch_ms(),
        },
    )


def confirm_page(request: Request) -> Response:
    """Asks before an action: what it does, to which workflow, from which step."""
    workflow_id, action = _target(request)
    start_step = filters.start_step(request.query_params.get("step", "1"))
    status = dashboard(request).client.retrieve_workflow(workflow_id).get_status().status
    return page(
        request,
        "confirm.html",
        {"workflow_id": workflow_id, "action": action, "start_step": start_step, "status": status},
    )


async def action_page(request: Request) -> Response:
    workflow_id, action = _target(request)
    form = await request.form()
    submitted = form.get(security.CSRF_FIELD)
    found = dashboard(request)
    security.require_action(
        request, found.settings, submitted if isinstance(submitted, str) else None
    )
    step = form.get("step", "1")
    start_step = filters.start_step(step if isinstance(step, str) else "")
    result = await run_in_threadpool(
        actions.perform,
        found.client,
        action,
        workflow_id,
        can_publish=found.settings.broker_url is not None,
        start_step=start_step,
    )
    return page(request, "result.html", {"result": result})


def _target(request: Request) -> tuple[str, str]:
    workflow_id = filters.workflow_id(request.path_params["workflow_id"])
    action = request.path_params["action"]
    if action not in actions.ACTIONS:
        raise BadRequest(f"unknown action {action!r}; one of {', '.join(actions.ACTIONS)}")
    return workflow_id, action


def queues_page(request: Request) -> Response:
    return page(request, "queues.html", {"queues": reading.queues(dashboard(request).client)})


def login_page(request: Request) -> Response:
    settings = dashboard(request).settings
    if not settings.auth_configured:
        raise security.Forbidden("This dashboard is read-only: there is nothing to log in to")
    if security.access(request, settings).authenticated:
        return RedirectResponse("/", status_code=303)
    if settings.token is None or request.query_params.get("basic"):
        raise security.NotAuthenticated("Log in with the dashboard's username and password")
    return page(request, "login.html", {"failed": False})


async def login(request: Request) -> Response:
    """The token form: checks the CSRF token and the token, then sets the session."""
    settings = dashboard(request).settings
    form = await request.form()
    submitted, token = form.get(security.CSRF_FIELD), form.get("token")
    security.check_csrf(request, submitted if isinstance(submitted, str) else None)
    if settings.token is None or not isinstance(token, str):
        raise security.Forbidden("This dashboard has no token login")
    if not security.token_matches(settings, token):
        return page(request, "login.html", {"failed": True}, status=401)
    response = RedirectResponse("/", status_code=303)
    security.set_session(request, response, settings.token)
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    submitted = form.get(security.CSRF_FIELD)
    security.check_csrf(request, submitted if isinstance(submitted, str) else None)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE)
    return response
