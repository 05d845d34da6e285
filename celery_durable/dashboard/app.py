"""The dashboard's Starlette app: its routes, its errors and its security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from celery_durable.api.client import DBOSClient
from celery_durable.dashboard import api, pages, rendering
from celery_durable.dashboard.actions import ActionRefused
from celery_durable.dashboard.filters import BadRequest
from celery_durable.dashboard.rendering import Dashboard
from celery_durable.dashboard.security import REALM, Forbidden, NotAuthenticated
from celery_durable.dashboard.settings import DashboardSettings
from celery_durable.error import (
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSSystemDatabaseError,
)

HERE = Path(__file__).parent

# Scripts and styles only from the dashboard itself; no frames, no sniffing.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def create_app(settings: DashboardSettings, client: DBOSClient | None = None) -> Starlette:
    """The dashboard as an ASGI app (serve it with uvicorn).

    Args:
        settings: Where the workflows are and who may act on them.
        client: The client to read and act with (default: one built from ``settings``).
    """
    if client is None:
        # Reading needs no broker; without one, resume and fork are refused.
        client = DBOSClient(settings.database_url, settings.broker_url or "memory://", lazy=True)
    app = Starlette(
        routes=[
            *pages.routes(),
            *api.routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={
            BadRequest: _error(400),
            NotAuthenticated: _error(401),
            Forbidden: _error(403),
            DBOSNonExistentWorkflowError: _error(404),
            ActionRefused: _error(409),
            DBOSSystemDatabaseError: _error(503),
            DBOSException: _error(400),
            HTTPException: _http_error,
        },
    )
    app.state.dashboard = Dashboard(
        settings=settings, client=client, templates=rendering.templates(HERE / "templates")
    )
    return app


def check_schema(app: Starlette) -> int:
    """The schema version the app reads (never migrating it).

    Raises:
        DBOSSchemaMissingError: the database has no schema: run `celery-durable migrate`.
    """
    return rendering.dashboard_of(app).client.overview().schema_version()


def _error(status: int) -> rendering.Handler:
    async def handle(request: Request, raised: Exception) -> Response:
        return _respond(request, status, str(raised))

    return handle


async def _http_error(request: Request, raised: Exception) -> Response:
    assert isinstance(raised, HTTPException)
    return _respond(request, raised.status_code, str(raised.detail))


def _respond(request: Request, status: int, message: str) -> Response:
    headers = {"www-authenticate": REALM} if status == 401 and _basic(request) else None
    if request.url.path.startswith("/api/") or request.url.path == "/metrics":
        return JSONResponse({"error": message, "status": status}, status, headers=headers)
    return rendering.page(
        request, "error.html", {"status": status, "message": message}, status, headers
    )


def _basic(request: Request) -> bool:
    return rendering.dashboard(request).settings.basic_username is not None


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
