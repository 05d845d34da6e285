"""Who may act: authentication (a token or HTTP basic) and CSRF protection.

Actions need an authenticated request; without any configured authentication the
dashboard is read-only. A browser authenticates with HTTP basic or with the token
through the login form, which sets a session cookie holding an HMAC of the token (never
the token). Every form action also carries a CSRF token that must equal the one in the
``SameSite=Strict`` cookie (double submit); a request authenticated by an
``Authorization: Bearer`` header carries no ambient credentials and needs none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from celery_durable.dashboard.settings import DashboardSettings

SESSION_COOKIE = "celery_durable_session"
CSRF_COOKIE = "celery_durable_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
REALM = 'Basic realm="celery-durable dashboard", charset="UTF-8"'


class NotAuthenticated(Exception):
    """An action (or the login) without valid credentials: HTTP 401."""


class Forbidden(Exception):
    """An action the dashboard refuses (read-only, or a CSRF mismatch): HTTP 403."""


@dataclass(frozen=True, kw_only=True)
class Access:
    """What one request may see and do."""

    authenticated: bool
    ambient: bool  # authenticated by a cookie or HTTP basic, which browsers resend
    auth_configured: bool

    @property
    def reveal(self) -> bool:
        """Whether inputs, outputs, errors and values may be shown."""
        return self.authenticated or not self.auth_configured

    @property
    def can_act(self) -> bool:
        return self.authenticated


def access(request: Request, settings: DashboardSettings) -> Access:
    """Checks the request's credentials against the settings (constant-time)."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    bearer = scheme.lower() == "bearer" and token_matches(settings, credentials.strip())
    basic = scheme.lower() == "basic" and _basic_matches(settings, credentials.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    session = (
        settings.token is not None
        and cookie is not None
        and hmac.compare_digest(cookie, session_value(settings.token))
    )
    return Access(
        authenticated=bearer or basic or session,
        ambient=not bearer,
        auth_configured=settings.auth_configured,
    )


def session_value(token: str) -> str:
    """The session cookie's value for a token: an HMAC of it, not the token."""
    digest = hmac.new(token.encode(), b"celery-durable dashboard session", hashlib.sha256)
    return digest.hexdigest()


def token_matches(settings: DashboardSettings, candidate: str) -> bool:
    if settings.token is None or not candidate:
        return False
    return hmac.compare_digest(candidate.encode(), settings.token.encode())


def _basic_matches(settings: DashboardSettings, credentials: str) -> bool:
    if settings.basic_username is None or settings.basic_password is None:
        return False
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, colon, password = decoded.partition(":")
    # Both compared, always: the time taken does not tell which one was wrong.
    user_ok = hmac.compare_digest(username.encode(), settings.basic_username.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.basic_password.encode())
    return bool(colon) and user_ok and password_ok


def require_action(request: Request, settings: DashboardSettings, submitted: str | None) -> None:
    """Raises unless this request may act: authenticated, and with the CSRF token when
    its credentials are ambient."""
    if not settings.auth_configured:
        raise Forbidden(
            "This dashboard is read-only: start it with a token or an HTTP basic login "
            "to cancel, resume or fork workflows"
        )
    granted = access(request, settings)
    if not granted.authenticated:
        raise NotAuthenticated("Log in to cancel, resume or fork workflows")
    if granted.ambient:
        check_csrf(request, submitted)


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.cookies.get(CSRF_COOKIE)
    given = submitted or request.headers.get(CSRF_HEADER)
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("The form's CSRF token is missing or stale: reload the page and retry")


def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's, or a new one (set by ``set_csrf``)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) == 43:
        return existing
    token: str | None = getattr(request.state, "csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.csrf = token
    return token


def set_csrf(request: Request, response: Response) -> None:
    """Sets the CSRF cookie if the page handed out a new token."""
    new = getattr(request.state, "csrf", None)
    if new is not None:
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_https(request)
        )


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
