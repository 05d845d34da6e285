"""The JSON API behind the pages (documented in docs/dashboard.md), and ``/metrics``."""

from __future__ import annotations

import json

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from celery_durable.core import forking
from celery_durable.dashboard import actions, filters, metrics, reading, security
from celery_durable.dashboard.filters import BadRequest
from celery_durable.dashboard.rendering import dashboard


def routes() -> list[Route]:
    return [
        Route("/api/workflows", list_workflows),
        Route("/api/workflows/{workflow_id}", get_workflow),
        Route("/api/workflows/{workflow_id}/steps", get_steps),
        Route("/api/workflows/{workflow_id}/{action}", act, methods=["POST"]),
        Route("/api/queues", list_queues),
        Route("/metrics", scrape),
    ]


def list_workflows(request: Request) -> Response:
    asked = filters.listing(request.query_params, request.query_params.getlist("status"))
    return JSONResponse(reading.listing(dashboard(request).client, asked))


def get_workflow(request: Request) -> Response:
    workflow_id = filters.workflow_id(request.path_params["workflow_id"])
    found = dashboard(request)
    reveal = security.access(request, found.settings).reveal
    return JSONResponse(reading.workflow(found.client, workflow_id, reveal))


def get_steps(request: Request) -> Response:
    workflow_id = filters.workflow_id(request.path_params["workflow_id"])
    found = dashboard(request)
    reveal = security.access(request, found.settings).reveal
    return JSONResponse(reading.steps(found.client, workflow_id, reveal))


async def act(request: Request) -> Response:
    """``POST /api/workflows/{id}/cancel|resume|fork``; fork takes ``{"start_step": n}``."""
    workflow_id = filters.workflow_id(request.path_params["workflow_id"])
    action = request.path_params["action"]
    if action not in actions.ACTIONS:
        raise BadRequest(f"unknown action {action!r}; one of {', '.join(actions.ACTIONS)}")
    found = dashboard(request)
    security.require_action(request, found.settings, None)
    start_step = filters.start_step(str(await _start_step(request)))
    result = await run_in_threadpool(
        actions.perform,
        found.client,
        action,
        workflow_id,
        can_publish=found.settings.broker_url is not None,
        start_step=start_step,
    )
    return JSONResponse(result.document())


async def _start_step(request: Request) -> object:
    body = await request.body()
    if not body:
        return 1
    try:
        document = json.loads(body)
    except ValueError:
        raise BadRequest('the body must be JSON, like {"start_step": 2}') from None
    if not isinstance(document, dict):
        raise BadRequest('the body must be a JSON object, like {"start_step": 2}')
    step = document.get("start_step", 1)
    if not isinstance(step, int) or isinstance(step, bool):
        raise BadRequest(f"start_step: {forking.RULE}, not {step!r}")
    return step


def list_queues(request: Request) -> Response:
    return JSONResponse({"queues": reading.queues(dashboard(request).client)})


def scrape(request: Request) -> Response:
    overview = dashboard(request).client.overview()
    return Response(generate_latest(metrics.registry(overview)), media_type=CONTENT_TYPE_LATEST)
