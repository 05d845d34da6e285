"""The dashboard's settings: where the workflows are, who may act on them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


@dataclass(frozen=True, kw_only=True)
class DashboardSettings:
    """What ``create_app`` needs.

    Args:
        database_url: The system database (read; never migrated from here).
        broker_url: The workers' broker, for resume and fork (they publish); None:
            those actions are refused with a clear message.
        token: Actions need it (``Authorization: Bearer``, or the login form).
        basic_username, basic_password: Actions need these (HTTP basic) instead.
        flower_url: Flower's address: each workflow's Celery task links there.
        refresh_seconds: How often the pages refresh themselves (0: never).

    With neither a token nor a basic login the dashboard is read-only. With one, a
    visitor who has not authenticated sees statuses and timings but no inputs,
    outputs, errors, events, messages or stream values.
    """

    database_url: str
    broker_url: str | None = None
    token: str | None = None
    basic_username: str | None = None
    basic_password: str | None = None
    flower_url: str | None = None
    refresh_seconds: float = 5.0

    def __post_init__(self) -> None:
        if (self.basic_username is None) != (self.basic_password is None):
            raise ValueError("HTTP basic needs both a username and a password")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("the dashboard token must be at least 16 characters")
        if self.flower_url is not None and not self.flower_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the Flower URL must start with http:// or https://, not {self.flower_url!r}"
            )
        if self.refresh_seconds < 0:
            raise ValueError("refresh_seconds must be >= 0")

    @property
    def auth_configured(self) -> bool:
        """Whether actions are possible at all (otherwise the dashboard is read-only)."""
        return self.token is not None or self.basic_username is not None

    def __repr__(self) -> str:
        # Never the secrets, nor the database's password.
        return (
            f"DashboardSettings(token={'set' if self.token else 'unset'}, "
            f"basic={'set' if self.basic_username else 'unset'}, "
            f"refresh_seconds={self.refresh_seconds})"
        )
