"""Workflows started by a Celery canvas: their recorded callbacks, fired once."""

from __future__ import annotations

from dataclasses import dataclass

from celery_durable.core.clock import now_epoch_ms
from celery_durable.store.connections import Connections
from celery_durable.store.rows import Redispatch
from celery_durable.store.sql import canvas


@dataclass(frozen=True)
class Firing:
    """A claimed firing: the recorded request and the workflow's outcome."""

    request: str
    status: str
    output: str | None
    error: str | None


class CanvasStore:
    """Recording a canvas's callbacks with its workflow, and claiming their firing."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def attach(self, workflow_uuid: str, request: str) -> bool:
        """Records what the canvas asks for when ``workflow_uuid`` ends (JSON); False
        if another canvas's callbacks wait for it (they are kept, these are not)."""
        params = {"workflow_uuid": workflow_uuid, "request": request, "now": now_epoch_ms()}
        recorded = self._connections.run(
            f"recording the canvas of workflow {workflow_uuid}",
            lambda connection: connection.execute(canvas.ATTACH_CANVAS, params).scalar_one(),
        )
        return bool(recorded == request)

    def claim_firing(self, workflow_uuid: str, lease_ms: int) -> Firing | None:
        """Claims the firing of a finished workflow's callbacks; None if it has none,
        is not finished, or they are fired or being fired."""
        params = {"workflow_uuid": workflow_uuid, "now": now_epoch_ms(), "lease_ms": lease_ms}
        row = self._connections.run(
            f"claiming the canvas of workflow {workflow_uuid}",
            lambda connection: connection.execute(canvas.CLAIM_FIRING, params).first(),
        )
        return None if row is None else Firing(row.request, row.status, row.output, row.error)

    def confirm_firing(self, workflow_uuid: str) -> None:
        """The callbacks were handed to the broker."""
        params = {"workflow_uuid": workflow_uuid, "now": now_epoch_ms()}
        self._connections.run(
            f"confirming the canvas of workflow {workflow_uuid}",
            lambda connection: connection.execute(canvas.CONFIRM_FIRING, params),
        )

    def overdue(self, *, grace_ms: int, limit: int) -> list[Redispatch]:
        """Finished workflows whose callbacks nobody fired in time (for the sweep)."""
        params = {"now": now_epoch_ms(), "grace_ms": grace_ms, "limit": limit}
        rows = self._connections.run(
            "finding canvases to fire",
            lambda connection: connection.execute(canvas.OVERDUE_FIRINGS, params).all(),
        )
        return [Redispatch(**row._asdict(), reason="canvas callbacks not fired") for row in rows]
