"""Decoding a workflow's recorded outcome and status row into Python values."""

from __future__ import annotations

import json
from typing import Any

from celery_durable.core.records import RawWorkflowRow, WorkflowStatus, WorkflowStatusString
from celery_durable.core.serialization import Serializer
from celery_durable.core.serializers import native_inputs
from celery_durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSWorkflowMaxRecoveryAttemptsExceededError,
)


def decode_outcome(
    workflow_id: str, status: str, output: str | None, error: str | None, serializer: Serializer
) -> tuple[bool, Any]:
    """``(True, output)`` for SUCCESS, ``(False, None)`` while running; raises failures."""
    if status == WorkflowStatusString.SUCCESS:
        return True, None if output is None else serializer.loads(output)
    if status == WorkflowStatusString.ERROR:
        if error is None:
            raise RuntimeError(f"Workflow {workflow_id} failed without a recorded error")
        raise serializer.loads(error)
    if status == WorkflowStatusString.CANCELLED:
        raise DBOSAwaitedWorkflowCancelledError(workflow_id)
    if status == WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        raise DBOSWorkflowMaxRecoveryAttemptsExceededError(workflow_id)
    return False, None


def decode_status(row: RawWorkflowRow, serializer: Serializer) -> WorkflowStatus:
    """Turns a stored row into the public record, decoding its serialized columns."""
    loaded = None if row.inputs is None else serializer.loads(row.inputs)
    # A custom serializer's text this process cannot read: the text, as DBOS shows it.
    inputs = loaded if loaded is None or isinstance(loaded, str) else native_inputs(loaded)
    # A method's receiver is recorded with its inputs (engine/classes.py), by name: known
    # only when the inputs are loaded.
    class_name, config_name = (
        (None, None) if not isinstance(inputs, dict) else inputs.pop("receiver", (None, None))
    )
    return WorkflowStatus(
        workflow_id=row.workflow_uuid,
        status=row.status,
        name=row.name,
        queue_name=row.queue_name,
        celery_queue=row.celery_queue,
        input=inputs,
        class_name=class_name,
        config_name=config_name,
        output=None if row.output is None else serializer.loads(row.output),
        error=None if row.error is None else serializer.loads(row.error),
        authenticated_user=row.authenticated_user,
        authenticated_roles=decode_roles(row.authenticated_roles),
        assumed_role=row.assumed_role,
        app_version=row.application_version,
        executor_id=row.executor_id,
        recovery_attempts=row.recovery_attempts,
        max_recovery_attempts=row.max_recovery_attempts,
        created_at=row.created_at_epoch_ms,
        updated_at=row.updated_at_epoch_ms,
        started_at_epoch_ms=row.started_at_epoch_ms,
        completed_at_epoch_ms=row.completed_at_epoch_ms,
        parent_workflow_id=row.parent_workflow_id,
        deduplication_id=row.deduplication_id,
        priority=row.priority,
        workflow_timeout_ms=row.workflow_timeout_ms,
        workflow_deadline_epoch_ms=row.workflow_deadline_epoch_ms,
        completed_at=row.completed_at_epoch_ms,
        dequeued_at=row.started_at_epoch_ms,
        forked_from=row.forked_from,
        was_forked_from=row.was_forked_from,
        delay_until_epoch_ms=row.delay_until_epoch_ms,
        attributes=row.attributes,
        schedule_name=row.schedule_name,
        queue_partition_key=row.queue_partition_key,
    )


def decode_roles(recorded: str | None) -> list[str] | None:
    """The roles column (a JSON list, as DBOS stores it) as a list; None when unset."""
    if recorded is None:
        return None
    roles = json.loads(recorded)
    return [str(role) for role in roles] if isinstance(roles, list) else None


def encode_roles(roles: list[str] | None) -> str | None:
    """Roles as the roles column holds them: a JSON list, NULL for none (as DBOS)."""
    return json.dumps(list(roles)) if roles else None
