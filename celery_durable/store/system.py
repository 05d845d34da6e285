"""The system database: its schema, creating, executing and reading workflows.

With :mod:`~celery_durable.store.operations` and :mod:`~celery_durable.store.connections`
it is the only code that touches a system-database connection. Public methods own
their transaction. Driver errors are turned into
:class:`~celery_durable.error.DBOSSystemDatabaseError` so callers see one error type
with a message that never contains credentials.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.records import RawWorkflowRow, StepRecord
from celery_durable.error import (
    DBOSConflictingWorkflowError,
    DBOSQueueDeduplicatedError,
    DBOSSchemaMissingError,
    DBOSSystemDatabaseError,
    DBOSWorkflowFunctionNotFoundError,
)
from celery_durable.store import databases, migrator
from celery_durable.store.errors import violates
from celery_durable.store.execution import (
    WorkflowExecution,
    parse_checkpoints,
)
from celery_durable.store.fence import FenceLost
from celery_durable.store.migrations import LATEST_VERSION
from celery_durable.store.operations import WorkflowOperations
from celery_durable.store.rows import (
    Claim,
    InsertedWorkflow,
    NewWorkflow,
)
from celery_durable.store.sql import schema_version, steps, workflows


class SystemStore(WorkflowOperations):
    """The system database of one process: schema, creating, executing and reading
    workflows (operations on whole workflows: :class:`WorkflowOperations`).

    Public methods own their transaction.
    """

    # -- schema -----------------------------------------------------------------------

    def migrate(self) -> int:
        """Creates or upgrades the schema; safe to run twice or concurrently.

        A migration that fails on a database that does not exist creates it (as DBOS
        does), over the direct session URL (a pooler in front may not serve
        ``postgres``), and runs once more: the common case costs no extra connection.

        Returns:
            The schema version now in place.
        """

        def work(connection: Connection) -> int:
            connection = connection.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                return migrator.migrate(connection, migrator.SYSTEM)

        # Through _run: a pooled connection that died with a server restart is retried.
        try:
            return self._run("migrating the schema", work)
        except DBOSSystemDatabaseError:
            if not databases.create_if_missing(self.session_url):
                raise
        return self._run("migrating the schema", work)

    def schema_version(self) -> int:
        return self._run(
            "reading the schema version",
            lambda connection: int(connection.execute(schema_version.CURRENT_VERSION).scalar_one()),
        )

    def require_current_schema(self) -> None:
        """Checks, before this process executes any workflow, that the schema is the one
        this code writes (executions against an older one would record what a later
        migration then misreads).

        Raises:
            DBOSSchemaMissingError: no tables, or an older schema version.
        """
        version = self.schema_version()
        if version < LATEST_VERSION:
            raise DBOSSchemaMissingError(
                f"The system database's celery_durable schema is at version {version}; "
                f"this code needs version {LATEST_VERSION}. Upgrade it with `celery-durable "
                "migrate` (or DBOS.launch(), or by starting a worker)"
            )

    # -- workflows --------------------------------------------------------------------

    def insert_workflow(self, workflow: NewWorkflow) -> InsertedWorkflow:
        """Inserts a workflow row, or reports the workflow that already has its id.

        Raises:
            DBOSConflictingWorkflowError: the id belongs to another workflow function.
            DBOSQueueDeduplicatedError: an active workflow of the queue has the same
                deduplication id.
            DBOSWorkflowFunctionNotFoundError: ``require_registered`` and no worker has
                registered the name.
            DBOSSystemDatabaseError: the database cannot be reached.
        """
        row = self._run(
            f"inserting workflow {workflow.workflow_uuid}",
            lambda connection: connection.execute(
                workflows.INSERT_WORKFLOW,
                _new_workflow_params(workflow)
                | {
                    "status": workflow.status,
                    "now": now_epoch_ms(),
                    "require_registered": workflow.require_registered,
                },
            ).first(),
            deduplicated=lambda: _deduplicated(workflow),
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
            raise _conflict(workflow.workflow_uuid, found.name, workflow.name)
        return found

    @contextlib.contextmanager
    def execute_workflow(
        self,
        workflow_uuid: str,
        executor_id: str,
        *,
        generation: int | None = None,
        max_recovery_attempts: int | None = None,
        new: NewWorkflow | None = None,
        app_version: str | None = None,
        version_live_ms: int = 0,
    ) -> Iterator[WorkflowExecution]:
        """Claims a workflow and yields its execution; the fence is released on exit.

        Claiming, loading the inputs and loading every checkpoint is one round trip.

        Args:
            generation: The delivery's dispatch generation (Celery's ``retries``);
                None for an in-process call.
            max_recovery_attempts: The workflow code's limit (None: the row's).
            new: A direct call's workflow (status PENDING): its row is inserted, unless
                one has its id, in the same round trip as the claim. A finished
                workflow's claim then carries its recorded outcome.
            app_version: The claimer's application version: a workflow of another is
                not claimed (outcome ``version``); one of none is stamped with it.
            version_live_ms: A version whose workers swept within this long is running
                (0: none counts as running; unused without ``app_version``).

        Raises:
            DBOSConflictingWorkflowError: ``new``'s id belongs to a workflow of another
                name (nothing was claimed).
        """
        params: dict[str, Any] = {
            "workflow_uuid": workflow_uuid,
            "executor_id": executor_id,
            "now": now_epoch_ms(),
            "generation": generation,
            "max_recovery_attempts": max_recovery_attempts,
            "app_version": app_version,
            "live_ms": version_live_ms,
            "owner_token": secrets.randbits(63),
        }
        if new is not None and (
            not self._synchronous_checkpoints
            or new.workflow_timeout_ms is not None
            or new.authenticated_roles is not None
            or new.assumed_role is not None
        ):
            # Executions commit asynchronously, but a workflow's creation never does; and
            # the combined call carries neither a timeout nor roles.
            self.insert_workflow(new)
            new = None
        fence = self.fence
        if not fence.hold(workflow_uuid):
            # Another execution of this process holds it (a duplicate delivery).
            busy = Claim(
                outcome="busy",
                name=None,
                status=None,
                inputs=None,
                authenticated_user=None,
                checkpoints={},
            )
            yield self._execution(workflow_uuid, busy, fence.epoch, params)
            return
        epoch, claim = self._claim(workflow_uuid, params, new)
        execution = self._execution(workflow_uuid, claim, epoch, params)
        if not execution.fenced:
            fence.let_go(workflow_uuid)
        try:
            yield execution
        finally:
            try:
                execution.release()
            except FenceLost:
                pass  # the lock went with the lost connection
            except DBOSSystemDatabaseError:
                # A lock must not outlive its execution: dropping the connection lets
                # go of it (and of this process's others, whose executions then find
                # their fence lost and run again from their checkpoints).
                fence.abandon(epoch)

    def _execution(
        self, workflow_uuid: str, claim: Claim, epoch: int, params: dict[str, Any]
    ) -> WorkflowExecution:
        return WorkflowExecution(
            self.fence,
            self.checkpoints,
            workflow_uuid,
            claim,
            epoch=epoch,
            owner_token=params["owner_token"],
        )

    def _claim(
        self, workflow_uuid: str, params: dict[str, Any], new: NewWorkflow | None
    ) -> tuple[int, Claim]:
        """Sends the claim (or a direct call's insert-and-claim) on the fence connection,
        where it takes the workflow's lock; returns the fence's epoch and the claim.
        The caller holds the workflow in the fence (``Fence.hold``) and lets go of it
        if nothing was claimed."""
        fence = self.fence
        sql = workflows.CLAIM_WORKFLOW_SQL
        if new is not None:
            sql = workflows.CALL_WORKFLOW_SQL
            params = params | _new_workflow_params(new)
        try:
            for attempt in (1, 2):
                before = fence.epoch
                try:
                    epoch, row = fence.send(
                        lambda: f"claiming workflow {workflow_uuid}", sql, params
                    )
                    break
                except DBOSSystemDatabaseError as error:
                    if attempt == 1 and fence.epoch != before:
                        fence.hold(workflow_uuid)  # the lost connection's holds were cleared
                        continue  # a connection that died with a server restart
                    if new is not None and violates(error, "deduplication_idx"):
                        raise _deduplicated(new) from error
                    raise
        except BaseException:
            fence.let_go(workflow_uuid)
            raise
        columns = _CALL_COLUMNS if new is not None else _CLAIM_COLUMNS
        found = dict(zip(columns, row, strict=True))
        if found["outcome"] == "conflict":
            assert new is not None
            fence.let_go(workflow_uuid)
            raise _conflict(workflow_uuid, found["name"], new.name)
        claim = Claim(
            outcome=found["outcome"],
            name=found["name"],
            status=found["status"],
            inputs=found["inputs"],
            authenticated_user=found["authenticated_user"],
            checkpoints=parse_checkpoints(found["checkpoints"]),
            wait_ms=found["wait_ms"],
            parent_workflow_id=found["parent_workflow_id"],
            recorded=(
                (found["output"], found["error"])
                if new is not None and found["outcome"] == "finished"
                else None
            ),
            app_version=found["app_version"],
        )
        return epoch, claim

    def get_workflow(self, workflow_uuid: str) -> RawWorkflowRow | None:
        row = self._run(
            f"reading workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_WORKFLOW, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return None if row is None else RawWorkflowRow(**row._asdict())

    def get_identity(self, workflow_uuid: str) -> tuple[str | None, str | None]:
        """``(authenticated_roles, assumed_role)`` of a workflow (roles: a JSON list);
        ``(None, None)`` if it does not exist."""
        row = self._run(
            f"reading the identity of workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_IDENTITY, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return (None, None) if row is None else (row.authenticated_roles, row.assumed_role)

    def get_outcome(self, workflow_uuid: str) -> tuple[str, str, str | None, str | None] | None:
        """``(name, status, output, error)`` of a workflow, or None if it does not exist."""
        row = self._run(
            f"reading workflow {workflow_uuid}",
            lambda connection: connection.execute(
                workflows.GET_OUTCOME, {"workflow_uuid": workflow_uuid}
            ).first(),
        )
        return None if row is None else (row.name, row.status, row.output, row.error)

    def list_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: list[str] | None = None,
        name: str | None = None,
        queue_name: str | None = None,
        start_epoch_ms: int | None = None,
        end_epoch_ms: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        app_version: list[str] | None = None,
    ) -> list[RawWorkflowRow]:
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if app_version is not None:
            conditions.append("application_version = ANY(:app_version)")
            params["app_version"] = list(app_version)
        if workflow_ids is not None:
            conditions.append("workflow_uuid = ANY(:workflow_ids)")
            params["workflow_ids"] = list(workflow_ids)
        if status is not None:
            conditions.append("status = ANY(:status)")
            params["status"] = list(status)
        if name is not None:
            conditions.append("name = :name")
            params["name"] = name
        if queue_name is not None:
            conditions.append("queue_name = :queue_name")
            params["queue_name"] = queue_name
        if start_epoch_ms is not None:
            conditions.append("created_at_epoch_ms >= :start")
            params["start"] = start_epoch_ms
        if end_epoch_ms is not None:
            conditions.append("created_at_epoch_ms <= :end")
            params["end"] = end_epoch_ms
        params["limit"] = limit
        params["offset"] = offset
        statement = workflows.list_workflows(
            conditions=conditions,
            descending=sort_desc,
            limit=limit is not None,
            offset=offset is not None,
        )
        rows = self._run(
            "listing workflows", lambda connection: connection.execute(statement, params).all()
        )
        return [RawWorkflowRow(**row._asdict()) for row in rows]

    def list_steps(self, workflow_uuid: str) -> list[StepRecord]:
        """Every checkpoint of a workflow, by function_id."""
        rows = self._run(
            f"listing steps of {workflow_uuid}",
            lambda connection: connection.execute(
                steps.LIST_STEPS, {"workflow_uuid": workflow_uuid}
            ).all(),
        )
        return [StepRecord(**row._asdict()) for row in rows]


def _new_workflow_params(workflow: NewWorkflow) -> dict[str, Any]:
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
        "max_recovery_attempts": workflow.max_recovery_attempts,
        "parent_workflow_id": workflow.parent_workflow_id,
        "deduplication_id": workflow.deduplication_id,
        "priority": workflow.priority,
        "workflow_timeout_ms": workflow.workflow_timeout_ms,
        "deadline": workflow.workflow_deadline_epoch_ms,
        "delay_until": workflow.delay_until_epoch_ms,
        "application_version": workflow.application_version,
    }


def _deduplicated(workflow: NewWorkflow) -> DBOSQueueDeduplicatedError:
    return DBOSQueueDeduplicatedError(
        workflow.workflow_uuid, str(workflow.queue_name), str(workflow.deduplication_id)
    )


def _conflict(workflow_uuid: str, existing_name: str, wanted: str) -> DBOSConflictingWorkflowError:
    return DBOSConflictingWorkflowError(
        workflow_uuid, f"workflow {existing_name!r} already uses this id, not {wanted!r}"
    )


_CLAIM_COLUMNS = (
    "outcome",
    "name",
    "status",
    "inputs",
    "authenticated_user",
    "checkpoints",
    "wait_ms",
    "parent_workflow_id",
    "app_version",
)
_CALL_COLUMNS = (*_CLAIM_COLUMNS, "inserted", "output", "error")
