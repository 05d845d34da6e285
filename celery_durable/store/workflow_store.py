"""Workflows' rows and checkpoints: inserting a workflow, and reading them back."""

from __future__ import annotations

from typing import Any

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import RawWorkflowRow, StepRecord
from celery_durable.error import (
    DBOSConflictingWorkflowError,
    DBOSQueueDeduplicatedError,
    DBOSSystemDatabaseError,
    DBOSWorkflowFunctionNotFoundError,
)
from celery_durable.store.connections import Connections
from celery_durable.store.rows import InsertedWorkflow, NewWorkflow, WorkflowQuery
from celery_durable.store.sql import listing, steps, workflows


class WorkflowStore:
    """Creating workflows, and reading their rows, outcomes and checkpoints (pooled
    autocommit connections: one statement, one transaction)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def insert_workflow(self, workflow: NewWorkflow) -> InsertedWorkflow:
        """Inserts a workflow row, or reports the workflow that already has its id.

        Raises:
            DBOSConflictingWorkflowError: the id belongs to another workflow function.
            DBOSQueueDeduplicatedError: an active workflow of the queue has the same
                deduplication id.
            DBOSWorkflowFunctionNotFoundError: ``require_registered``, and workers have
                registered names, none of them this one.
            DBOSSystemDatabaseError: the database cannot be reached.
        """
        row = self._connections.run(
            f"inserting workflow {workflow.workflow_uuid}",
            lambda connection: connection.execute(
                workflows.INSERT_WORKFLOW,
                new_workflow_params(workflow)
                | {
                    "status": workflow.status,
                    "now": now_epoch_ms(),
                    "require_registered": workflow.require_registered,
                },
            ).first(),
            deduplicated=lambda: deduplicated(workflow),
        )
        if row is None:
            outcome = self.get_outcome(workflow.workflow_uuid)
            if outcome is None:
                if workflow.require_registered:
                    raise DBOSWorkflowFunctionNotFoundError(
                        workflow.name,
                        f"No worker has registered workflow {workflow.name!r}: start a worker "
                        "that imports it first, or enqueue with "
                        '{"allow_unregistered": True} to enqueue ahead of deployment',
                    )
                raise DBOSSystemDatabaseError(
                    f"Workflow {workflow.workflow_uuid} was neither inserted nor found"
                )
            name, status, output, error = outcome
            found = InsertedWorkflow(
                inserted=False, name=name, status=status, output=output, error=error
            )
        else:
            found = InsertedWorkflow(
                inserted=row.inserted,
                name=row.name,
                status=row.status,
                output=row.output,
                error=row.error,
            )
        if not found.inserted and found.name != workflow.name:
            raise conflict(workflow.workflow_uuid, found.name, workflow.name)
        return found

    def get_workflow(self, workflow_uuid: str) -> RawWorkflowRow | None:
        row = self._connections.run(
            f"reading workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_WORKFLOW, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return None if row is None else RawWorkflowRow(**row._asdict())

    def get_identity(self, workflow_uuid: str) -> tuple[str | None, str | None]:
        """``(authenticated_roles, assumed_role)`` of a workflow (roles: a JSON list);
        ``(None, None)`` if it does not exist."""
        row = self._connections.run(
            f"reading the identity of workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_IDENTITY, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return (None, None) if row is None else (row.authenticated_roles, row.assumed_role)

    def get_outcome(self, workflow_uuid: str) -> tuple[str, str, str | None, str | None] | None:
        """``(name, status, output, error)`` of a workflow, or None if it does not exist."""
        row = self._connections.run(
            f"reading workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_OUTCOME, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return None if row is None else (row.name, row.status, row.output, row.error)

    def list_workflows(self, query: WorkflowQuery) -> list[RawWorkflowRow]:
        """The workflows ``query`` selects, by creation time (then id)."""
        statement, params = listing.list_workflows(query)
        rows = self._connections.observe(
            "listing workflows", lambda connection: connection.execute(statement, params).all()
        )
        return [RawWorkflowRow(**row._asdict()) for row in rows]

    def list_steps(
        self, workflow_uuid: str, *, limit: int | None = None, offset: int | None = None
    ) -> list[StepRecord]:
        """Every checkpoint of a workflow, by function_id (or a page of them: None is no
        limit, no offset)."""
        rows = self._connections.observe(
            f"listing steps of {workflow_uuid}",
            lambda connection: connection.execute(
                steps.LIST_STEPS,
                {"workflow_uuid": workflow_uuid, "limit": limit, "offset": offset},
            ).all(),
        )
        return [StepRecord(**row._asdict()) for row in rows]


def new_workflow_params(workflow: NewWorkflow) -> dict[str, Any]:
    """The parameters INSERT_WORKFLOW and CALL_WORKFLOW share."""
    return {
        "workflow_uuid": workflow.workflow_uuid,
        "name": workflow.name,
        "queue_name": workflow.queue_name,
        "inputs": workflow.inputs,
        "authenticated_user": workflow.authenticated_user,
        "authenticated_roles": workflow.authenticated_roles,
        "assumed_role": workflow.assumed_role,
        "inherit_identity": workflow.inherit_identity,
        "inherit_deadline": workflow.inherit_deadline,
        "max_recovery_attempts": workflow.max_recovery_attempts,
        "parent_workflow_id": workflow.parent_workflow_id,
        "deduplication_id": workflow.deduplication_id,
        "priority": workflow.priority,
        "workflow_timeout_ms": workflow.workflow_timeout_ms,
        "deadline": workflow.workflow_deadline_epoch_ms,
        "delay_until": workflow.delay_until_epoch_ms,
        "application_version": workflow.application_version,
        "queue_partition_key": workflow.queue_partition_key,
        "schedule_name": workflow.schedule_name,
        "attributes": workflow.attributes,
        "dbos_queue_name": workflow.dbos_queue_name,
    }


def deduplicated(workflow: NewWorkflow) -> DBOSQueueDeduplicatedError:
    """The error of a workflow whose queue has an active one with its deduplication id."""
    return DBOSQueueDeduplicatedError(
        workflow.workflow_uuid, str(workflow.queue_name), str(workflow.deduplication_id)
    )


def conflict(workflow_uuid: str, existing_name: str, wanted: str) -> DBOSConflictingWorkflowError:
    """The error of an id that another workflow function already uses."""
    return DBOSConflictingWorkflowError(
        workflow_uuid,
        f"Workflow already exists with a different function name: {existing_name}, "
        f"but the provided function name is: {wanted}",
    )
