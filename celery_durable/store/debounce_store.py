"""Debouncing's one transaction: move the key's DELAYED workflow, or start a new one."""

from __future__ import annotations

from dataclasses import dataclass

from celery_durable.core.clock import now_epoch_ms
from celery_durable.error import DBOSWorkflowFunctionNotFoundError
from celery_durable.store.connections import Connections
from celery_durable.store.rows import NewWorkflow
from celery_durable.store.sql import debouncing
from celery_durable.store.sql import workflows as workflow_sql
from celery_durable.store.workflow_store import new_workflow_params


@dataclass(frozen=True, kw_only=True)
class Debounced:
    """What a debounce did: ``workflow_id`` is the workflow it moved (``bounced``) or
    started, or, with ``conflict``, the workflow of another kind holding the key."""

    workflow_id: str
    bounced: bool = False
    conflict: bool = False


class DebounceStore:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def debounce(self, row: NewWorkflow, *, deadline_epoch_ms: int | None) -> Debounced:
        """Moves the DELAYED debounced workflow holding ``row``'s deduplication id (in
        ``row``'s queue, of ``row``'s name) to ``row``'s delay, capped at its deadline,
        with ``row``'s inputs; else inserts ``row`` (DELAYED) as the key's holder, after
        taking the key from a debounced workflow of the name that started running.

        Serialized per key: two debounces of one key never both insert.
        """
        assert row.deduplication_id is not None and row.delay_until_epoch_ms is not None
        key = {"queue_name": row.queue_name, "deduplication_id": row.deduplication_id}
        now = now_epoch_ms()
        with self._connections.transaction(f"debouncing {row.deduplication_id}") as connection:
            connection.execute(debouncing.LOCK_KEY, key)
            bounced = connection.execute(
                debouncing.BOUNCE,
                key
                | {
                    "name": row.name,
                    "delay_until": row.delay_until_epoch_ms,
                    "inputs": row.inputs,
                    "now": now,
                },
            ).scalar()
            if bounced is not None:
                return Debounced(workflow_id=bounced, bounced=True)
            holder = connection.execute(debouncing.HOLDER, key).first()
            if holder is not None:
                if not holder.is_debounced or holder.name != row.name:
                    return Debounced(workflow_id=holder.workflow_uuid, conflict=True)
                connection.execute(debouncing.RELEASE_KEY, {"workflow_uuid": holder.workflow_uuid})
            inserted = connection.execute(
                workflow_sql.INSERT_WORKFLOW,
                new_workflow_params(row)
                | {"status": row.status, "now": now, "require_registered": row.require_registered},
            ).first()
            if inserted is None:
                raise DBOSWorkflowFunctionNotFoundError(
                    row.name,
                    f"No worker has registered workflow {row.name!r}: start a worker that "
                    "imports it first",
                )
            if inserted.inserted:
                connection.execute(
                    debouncing.MARK_DEBOUNCED,
                    {"workflow_uuid": row.workflow_uuid, "deadline": deadline_epoch_ms},
                )
        return Debounced(workflow_id=row.workflow_uuid)
