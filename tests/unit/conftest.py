"""Unit tests: the engine over the in-memory store, with no service at all (no
PostgreSQL, no broker; the root conftest's service fixtures are never requested)."""

from __future__ import annotations

import pytest

from celery_durable.core import clock as wall_clock
from celery_durable.engine import steps
from tests.unit.harness import Clock, Harness


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The engine's wall clock (``now_epoch_ms``) and its steps' in-process sleeps."""
    fake = Clock()
    monkeypatch.setattr(wall_clock, "time", fake)
    monkeypatch.setattr(steps, "time", fake)
    return fake


@pytest.fixture
def harness(clock: Clock) -> Harness:
    return Harness(clock)
