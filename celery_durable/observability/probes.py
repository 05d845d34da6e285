"""The probes enabled in this process, installed as one (see
:mod:`celery_durable.core.instrumentation`)."""

from __future__ import annotations

from collections.abc import Sequence

from celery_durable.core import instrumentation
from celery_durable.core.instrumentation import Observation, Probe

# By kind ("metrics", "tracing"): process-wide, as the probe they make up.
_enabled: dict[str, Probe] = {}


def enable(kind: str, probe: Probe) -> None:
    """Adds (or replaces) this process's probe of ``kind``."""
    _enabled[kind] = probe
    _install()


def disable(kind: str) -> None:
    _enabled.pop(kind, None)
    _install()


def enabled(kind: str) -> Probe | None:
    return _enabled.get(kind)


def _install() -> None:
    probes = list(_enabled.values())
    if not probes:
        instrumentation.install(None)
    elif len(probes) == 1:
        instrumentation.install(probes[0])
    else:
        instrumentation.install(FanOut(probes))


class FanOut:
    """Several probes as one: each moment goes to each, in order."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self._probes = tuple(probes)

    def workflow_started(self, workflow_id: str, name: str) -> Observation:
        return _Observations([probe.workflow_started(workflow_id, name) for probe in self._probes])

    def step_started(
        self, workflow_id: str | None, step_name: str, step_id: int | None, attempt: int
    ) -> Observation:
        return _Observations(
            [probe.step_started(workflow_id, step_name, step_id, attempt) for probe in self._probes]
        )

    def checkpoint_recorded(self, seconds: float) -> None:
        for probe in self._probes:
            probe.checkpoint_recorded(seconds)

    def recovered(self, count: int) -> None:
        for probe in self._probes:
            probe.recovered(count)


class _Observations:
    def __init__(self, observations: list[Observation]) -> None:
        self._observations = observations

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        # The last begun ends first (a span made current is detached in order).
        for observation in reversed(self._observations):
            observation.end(outcome, error)
