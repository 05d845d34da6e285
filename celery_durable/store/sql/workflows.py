"""A workflow's row: inserting it, an execution's claim of it (alone or with the insert,
a direct call), its release, reschedule and outcome, and the reads of workflows."""

from __future__ import annotations

from sqlalchemy import text

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.sql.driver import driver_sql

# Inserts a workflow, or reports the one that already has this id, in one statement.
# (If a concurrent insert of the same id commits after this statement's snapshot, no
# row comes back; the caller then reads the row on its own.)
INSERT_WORKFLOW = text(
    f"""
    WITH inserted AS (
        INSERT INTO {SCHEMA}.workflow_status (
            workflow_uuid, name, status, queue_name, inputs, authenticated_user,
            max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms,
            next_dispatch_at_epoch_ms, execution_active, parent_workflow_id,
            deduplication_id, priority, workflow_timeout_ms, workflow_deadline_epoch_ms,
            authenticated_roles, assumed_role, application_version, queue_partition_key,
            schedule_name, attributes, dbos_queue_name)
        SELECT :workflow_uuid, :name,
               CASE WHEN CAST(:delay_until AS bigint) IS NULL THEN :status ELSE 'DELAYED' END,
               :queue_name, :inputs,
               CASE WHEN :inherit_identity THEN parent.authenticated_user
                    ELSE :authenticated_user END,
               :max_recovery_attempts, :now, :now,
               COALESCE(CAST(:delay_until AS bigint), :now), false, :parent_workflow_id,
               :deduplication_id, :priority, :workflow_timeout_ms,
               -- Without a timeout of its own, a child inherits its parent's deadline
               -- (unless started in a SetWorkflowTimeout block).
               CASE WHEN CAST(:workflow_timeout_ms AS bigint) IS NOT NULL
                    THEN CAST(:deadline AS bigint)
                    WHEN NOT :inherit_deadline THEN NULL
                    ELSE (SELECT COALESCE(p.workflow_deadline_epoch_ms,
                                          p.started_at_epoch_ms + p.workflow_timeout_ms)
                          FROM {SCHEMA}.workflow_status AS p
                          WHERE p.workflow_uuid = :parent_workflow_id) END,
               CASE WHEN :inherit_identity THEN parent.authenticated_roles
                    ELSE :authenticated_roles END,
               CASE WHEN :inherit_identity THEN parent.assumed_role ELSE :assumed_role END,
               :application_version, :queue_partition_key, :schedule_name,
               CAST(:attributes AS jsonb), :dbos_queue_name
        -- A child that inherits its parent's identity copies it from the parent's row.
        FROM (SELECT 1) AS one
        LEFT JOIN {SCHEMA}.workflow_status AS parent
               ON :inherit_identity AND parent.workflow_uuid = :parent_workflow_id
        -- A producer without the code may only start names some worker has served,
        -- once workers have served any: before the first worker (producers deployed
        -- first) the workflow waits ENQUEUED, as in DBOS, until a worker serves it.
        WHERE NOT :require_registered
           OR EXISTS (SELECT 1 FROM {SCHEMA}.registered_workflows WHERE name = :name)
           OR NOT EXISTS (SELECT 1 FROM {SCHEMA}.registered_workflows)
        ON CONFLICT (workflow_uuid) DO NOTHING
        RETURNING name, status
    )
    SELECT true AS inserted, name, status, NULL AS output, NULL AS error FROM inserted
    UNION ALL
    SELECT false, name, status, output, error FROM {SCHEMA}.workflow_status
    WHERE workflow_uuid = :workflow_uuid AND NOT EXISTS (SELECT 1 FROM inserted)
    """
)

CLAIM_WORKFLOW = text(
    f"SELECT outcome, name, status, inputs, authenticated_user, checkpoints, wait_ms, "
    f"parent_workflow_id, app_version "
    f"FROM {SCHEMA}.claim_workflow("
    ":workflow_uuid, :executor_id, :now, :generation, :max_recovery_attempts, "
    ":app_version, :live_ms, :owner_token)"
)

# A direct call: insert the workflow's row and claim it in one round trip.
CALL_WORKFLOW = text(
    f"SELECT outcome, name, status, inputs, authenticated_user, checkpoints, wait_ms, "
    f"parent_workflow_id, app_version, inserted, output, error "
    f"FROM {SCHEMA}.call_workflow("
    ":workflow_uuid, :name, :queue_name, :inputs, :authenticated_user, "
    ":max_recovery_attempts, :parent_workflow_id, :deduplication_id, :priority, "
    ":executor_id, :now, :application_version, :app_version, :live_ms, :owner_token)"
)

# The releases below update the workflow's row and unlock in the same statement: a
# claimer that gets the lock before the commit waits on the row (see claim_workflow).

# An execution that ends without an outcome (interrupted): the next delivery, or the
# sweep after its grace period, runs it again.
RELEASE_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET execution_active = false, next_dispatch_at_epoch_ms = :now, updated_at_epoch_ms = :now,
        wait_key = NULL
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))
    """
)

# An execution that waits for a step's next attempt: a new dispatch generation, due at
# :due (parked: the sweep publishes it then; otherwise a Celery countdown does).
RESCHEDULE_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET execution_active = false,
        dispatch_generation = dispatch_generation + 1,
        -- A child that finished meanwhile asked for its parent to run at once.
        next_dispatch_at_epoch_ms = CASE WHEN wake_requested THEN :now ELSE :due END,
        dispatch_parked = :parked AND NOT wake_requested,
        wake_requested = false,
        wait_key = NULL,
        updated_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING dispatch_generation, next_dispatch_at_epoch_ms, dispatch_parked,
              pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))
    """
)

# Only when the workflow's row could not be updated (it is no longer PENDING).
RELEASE_FENCE = text("SELECT pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))")

# Records the outcome and lets go of the fence in the same statement. The unlock runs
# before the commit; a claimer that gets the lock in between blocks on this row and
# then sees the finished status (see claim_workflow). It also says whether a Celery
# canvas started the workflow (its callbacks are to be fired: integration.canvas).
COMPLETE_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = :status, output = :output, error = :error, execution_active = false,
        updated_at_epoch_ms = :now, completed_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING pg_advisory_unlock(hashtextextended(:workflow_uuid, 0)),
              EXISTS (SELECT 1 FROM {SCHEMA}.workflow_canvas AS c
                      WHERE c.workflow_uuid = :workflow_uuid AND c.fired_at_epoch_ms IS NULL)
    """
)

# A workflow's row as WorkflowStatus shows it; the outcome and inputs come last, so a
# listing that does not load them (listing.py) replaces them.
WORKFLOW_COLUMNS_WITHOUT_PAYLOAD = f"""
    workflow_uuid, status, name, dbos_queue_name AS queue_name, queue_name AS celery_queue,
    authenticated_user, executor_id, recovery_attempts, max_recovery_attempts, created_at_epoch_ms,
    updated_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms, parent_workflow_id,
    deduplication_id, priority, workflow_timeout_ms,
    COALESCE(workflow_deadline_epoch_ms, started_at_epoch_ms + workflow_timeout_ms)
        AS workflow_deadline_epoch_ms,
    authenticated_roles, assumed_role, application_version, forked_from,
    EXISTS (SELECT 1 FROM {SCHEMA}.workflow_status AS fork
            WHERE fork.forked_from = workflow_status.workflow_uuid) AS was_forked_from,
    CASE WHEN status = 'DELAYED' THEN next_dispatch_at_epoch_ms END AS delay_until_epoch_ms,
    attributes, schedule_name, queue_partition_key
"""

_WORKFLOW_COLUMNS = f"{WORKFLOW_COLUMNS_WITHOUT_PAYLOAD}, inputs, output, error"

# The roles and assumed role of a running workflow, read when its code first asks.
GET_IDENTITY = text(
    f"SELECT authenticated_roles, assumed_role FROM {SCHEMA}.workflow_status "
    "WHERE workflow_uuid = :workflow_uuid"
)

GET_WORKFLOW = text(
    f"SELECT {_WORKFLOW_COLUMNS} FROM {SCHEMA}.workflow_status WHERE workflow_uuid = :workflow_uuid"
)

GET_OUTCOME = text(
    f"SELECT name, status, output, error FROM {SCHEMA}.workflow_status "
    "WHERE workflow_uuid = :workflow_uuid"
)


# Per execution, in the driver's placeholder style.
COMPLETE_WORKFLOW_SQL = driver_sql(COMPLETE_WORKFLOW)
RESCHEDULE_WORKFLOW_SQL = driver_sql(RESCHEDULE_WORKFLOW)
RELEASE_WORKFLOW_SQL = driver_sql(RELEASE_WORKFLOW)
RELEASE_FENCE_SQL = driver_sql(RELEASE_FENCE)
CLAIM_WORKFLOW_SQL = driver_sql(CLAIM_WORKFLOW)
CALL_WORKFLOW_SQL = driver_sql(CALL_WORKFLOW)
