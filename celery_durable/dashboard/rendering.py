"""Rendering pages: the templates, their filters, and what every page is given."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from celery_durable.api.client import DBOSClient
from celery_durable.dashboard import security
from celery_durable.dashboard.settings import DashboardSettings
from celery_durable.dashboard.timeline import duration

Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    """What every request handler uses (``request.app.state.dashboard``)."""

    settings: DashboardSettings
    client: DBOSClient
    templates: Jinja2Templates


def dashboard(request: Request) -> Dashboard:
    return dashboard_of(request.app)


def dashboard_of(app: Starlette) -> Dashboard:
    found: Dashboard = app.state.dashboard
    return found


def templates(directory: Path) -> Jinja2Templates:
    """The page templates (autoescaped) with the filters they use."""
    loaded = Jinja2Templates(directory=directory)
    loaded.env.filters["when"] = when
    loaded.env.filters["duration"] = duration
    loaded.env.filters["pretty"] = pretty
    loaded.env.globals["pager"] = pager
    return loaded


def when(epoch_ms: int | None) -> str:
    """Epoch milliseconds as UTC, to the millisecond."""
    if epoch_ms is None:
        return "-"
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def pager(params: QueryParams, offset: int) -> str:
    """The listing's query string with another offset (its filters kept)."""
    kept = [(key, item) for key, item in params.multi_items() if key != "offset"]
    return urlencode([*kept, ("offset", str(max(offset, 0)))])


def pretty(value: Any) -> str:
    """A JSON value, indented, for a <pre>."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Renders a page with what every page shows: who is looking and what they may do."""
    found = dashboard(request)
    settings = found.settings
    granted = security.access(request, settings)
    response = found.templates.TemplateResponse(
        request,
        name,
        {
            **context,
            "access": granted,
            "csrf_token": security.csrf_token(request),
            "csrf_field": security.CSRF_FIELD,
            "settings": settings,
            "refresh_ms": int(settings.refresh_seconds * 1000),
            "can_publish": settings.broker_url is not None,
        },
        status_code=status,
        headers=dict(headers) if headers else None,
    )
    security.set_csrf(request, response)
    return response
