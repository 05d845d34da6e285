"""Validating what a request asks for: workflow ids, listing filters, pages.

Every problem is a :class:`BadRequest` with a message that says what to send instead;
the app answers it with 400, never 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from celery_durable.core import forking
from celery_durable.core.records import WorkflowStatusString
from celery_durable.error import DBOSException
from celery_durable.service.overview import WorkflowQuery
from celery_durable.service.schedules import SCHEDULED_ID_PREFIX

MAX_TEXT = 256
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_OFFSET = 1_000_000
STATUSES = [status.value for status in WorkflowStatusString]

# The query parameters of a listing (status may repeat).
TEXT_FILTERS = ("name", "queue", "id_prefix", "user", "version")
LISTING_PARAMETERS = frozenset(
    {"status", "since", "until", "limit", "offset", "scheduled", *TEXT_FILTERS}
)


class BadRequest(ValueError):
    """A request the dashboard cannot answer as asked (HTTP 400)."""


@dataclass(frozen=True, kw_only=True)
class Listing:
    """A validated listing request: the filters and the page."""

    query: WorkflowQuery
    limit: int
    offset: int


def workflow_id(value: str) -> str:
    """A workflow id as a path or form gives it: printable, at most 256 characters."""
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest("a workflow id is 1 to 256 printable characters")
    return value


def listing(params: Mapping[str, str], statuses: list[str]) -> Listing:
    """The listing that query parameters ask for (``statuses``: every ``status`` given).

    Raises:
        BadRequest: an unknown parameter or status, a bad time or number, a text too long.
    """
    unknown = sorted(set(params) - LISTING_PARAMETERS)
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0]!r}; known: {sorted(LISTING_PARAMETERS)}")
    statuses = [status for status in statuses if status]  # an empty select sends ""
    for status in statuses:
        if status not in STATUSES:
            raise BadRequest(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    start, end = _moment(params, "since"), _moment(params, "until")
    if start is not None and end is not None and start > end:
        raise BadRequest("since is after until")
    query = WorkflowQuery(
        statuses=list(dict.fromkeys(statuses)) or None,
        start_epoch_ms=start,
        end_epoch_ms=end,
        name=_text(params, "name"),
        queue_name=_text(params, "queue"),
        id_prefix=_text(params, "id_prefix"),
        authenticated_user=_text(params, "user"),
        application_version=_text(params, "version"),
        exclude_id_prefix=_scheduled(params),
    )
    limit = _number(params, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _number(params, "offset", 0, 0, MAX_OFFSET)
    return Listing(query=query, limit=limit, offset=offset)


def _scheduled(params: Mapping[str, str]) -> str | None:
    """``scheduled=hide`` leaves out the runs of schedules (their ids' prefix)."""
    value = params.get("scheduled", "").strip()
    if not value:
        return None
    if value != "hide":
        raise BadRequest("scheduled must be 'hide' (or left out: scheduled runs are shown)")
    return SCHEDULED_ID_PREFIX


def _text(params: Mapping[str, str], key: str) -> str | None:
    value = params.get(key, "").strip()
    if not value:
        return None
    if len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"{key} must be at most {MAX_TEXT} printable characters")
    return value


def _moment(params: Mapping[str, str], key: str) -> int | None:
    """An ISO-8601 time (naive: UTC) as epoch milliseconds."""
    value = params.get(key, "").strip()
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{key} must be an ISO-8601 time, like 2025-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _number(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadRequest(f"{key} must be a whole number from {low} to {high}")
    return int(value)


def start_step(value: str) -> int:
    """A fork's first step, by ``core.forking``'s rule (the CLI's too)."""
    try:
        return forking.typed_start_step(value)
    except DBOSException as error:
        raise BadRequest(error.message) from None
