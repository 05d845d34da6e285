"""Every SQL statement the library issues, named once (the system database's, then the
application database's).

Only the store's modules execute them. Parameters are always bound.
"""

from __future__ import annotations

import re

from sqlalchemy import TextClause, text

from celery_durable.store.migrations import MIGRATION_LOCK_KEY, SCHEMA

LOCK_MIGRATIONS = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=MIGRATION_LOCK_KEY)

CURRENT_VERSION = text(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_version")

RECORD_VERSION = text(
    f"INSERT INTO {SCHEMA}.schema_version (version, applied_at_epoch_ms) VALUES (:version, :now)"
)

CURRENT_APPLICATION_VERSION = text(
    f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.application_schema_version"
)

RECORD_APPLICATION_VERSION = text(
    f"INSERT INTO {SCHEMA}.application_schema_version (version, applied_at_epoch_ms) "
    "VALUES (:version, :now)"
)

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
            authenticated_roles, assumed_role, application_version)
        SELECT :workflow_uuid, :name,
               CASE WHEN CAST(:delay_until AS bigint) IS NULL THEN :status ELSE 'DELAYED' END,
               :queue_name, :inputs,
               CASE WHEN :inherit_identity THEN parent.authenticated_user
                    ELSE :authenticated_user END,
               :max_recovery_attempts, :now, :now,
               COALESCE(CAST(:delay_until AS bigint), :now), false, :parent_workflow_id,
               :deduplication_id, :priority, :workflow_timeout_ms,
               -- Without a timeout of its own, a child inherits its parent's deadline.
               CASE WHEN CAST(:workflow_timeout_ms AS bigint) IS NOT NULL
                    THEN CAST(:deadline AS bigint)
                    ELSE (SELECT COALESCE(p.workflow_deadline_epoch_ms,
                                          p.started_at_epoch_ms + p.workflow_timeout_ms)
                          FROM {SCHEMA}.workflow_status AS p
                          WHERE p.workflow_uuid = :parent_workflow_id) END,
               CASE WHEN :inherit_identity THEN parent.authenticated_roles
                    ELSE :authenticated_roles END,
               CASE WHEN :inherit_identity THEN parent.assumed_role ELSE :assumed_role END,
               :application_version
        -- A child that inherits its parent's identity copies it from the parent's row.
        FROM (SELECT 1) AS one
        LEFT JOIN {SCHEMA}.workflow_status AS parent
               ON :inherit_identity AND parent.workflow_uuid = :parent_workflow_id
        -- A producer without the code may only start names some worker has served.
        WHERE NOT :require_registered
           OR EXISTS (SELECT 1 FROM {SCHEMA}.registered_workflows WHERE name = :name)
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

CANCEL_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = 'CANCELLED', dispatch_parked = false, updated_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')
    RETURNING workflow_uuid
    """
)

# Runs the workflow again from its checkpoints: a new generation, a fresh recovery
# budget, and no outcome.
RESUME_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = 'ENQUEUED', output = NULL, error = NULL, completed_at_epoch_ms = NULL,
        recovery_attempts = 0, execution_active = false, dispatch_parked = false,
        dispatch_generation = dispatch_generation + 1, next_dispatch_at_epoch_ms = :now,
        updated_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid
      AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
    RETURNING name, queue_name, dispatch_generation
    """
)

# A new workflow with the same inputs and the checkpoints before :start_step, and the
# events and stream values those operations wrote (messages are not copied, as in DBOS).
FORK_WORKFLOW = text(
    f"""
    WITH source AS (
        SELECT * FROM {SCHEMA}.workflow_status WHERE workflow_uuid = :workflow_uuid
    ), forked AS (
        INSERT INTO {SCHEMA}.workflow_status (
            workflow_uuid, name, status, queue_name, inputs, authenticated_user,
            max_recovery_attempts, created_at_epoch_ms, updated_at_epoch_ms,
            next_dispatch_at_epoch_ms, priority, authenticated_roles, assumed_role,
            application_version, forked_from)
        -- The fork runs on the version asked for, or on the first worker to claim it.
        SELECT :forked_uuid, name, 'ENQUEUED', queue_name, inputs, authenticated_user,
               max_recovery_attempts, :now, :now, :now, priority, authenticated_roles,
               assumed_role, :application_version, :workflow_uuid
        FROM source
        RETURNING name, queue_name
    ), copied AS (
        INSERT INTO {SCHEMA}.operation_outputs (
            workflow_uuid, function_id, function_name, output, error, child_workflow_id,
            attempts, attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms,
            completed_at_epoch_ms, max_attempts)
        SELECT :forked_uuid, function_id, function_name, output, error, child_workflow_id,
               attempts, attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms,
               completed_at_epoch_ms, max_attempts
        FROM {SCHEMA}.operation_outputs
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND completed_at_epoch_ms IS NOT NULL
          AND EXISTS (SELECT 1 FROM forked)
    ), copied_history AS (
        INSERT INTO {SCHEMA}.workflow_events_history (workflow_uuid, function_id, key, value)
        SELECT :forked_uuid, function_id, key, value
        FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
    ), copied_events AS (
        -- Each key's latest value among the copied history (as DBOS rebuilds it).
        INSERT INTO {SCHEMA}.workflow_events (workflow_uuid, key, value)
        SELECT DISTINCT ON (key) :forked_uuid, key, value
        FROM {SCHEMA}.workflow_events_history
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
        ORDER BY key, function_id DESC
    ), copied_streams AS (
        INSERT INTO {SCHEMA}.streams (workflow_uuid, key, "offset", value, function_id)
        SELECT :forked_uuid, key, "offset", value, function_id
        FROM {SCHEMA}.streams
        WHERE workflow_uuid = :workflow_uuid AND function_id < :start_step
          AND EXISTS (SELECT 1 FROM forked)
    )
    SELECT name, queue_name FROM forked
    """
)

# A child finished: run its parent now. If the parent is executing, ask it to come
# back at once when it next waits (wake_requested); otherwise publish it again.
WAKE_PARENT = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET wake_requested = execution_active,
        dispatch_generation = dispatch_generation + (CASE WHEN execution_active THEN 0 ELSE 1 END),
        next_dispatch_at_epoch_ms = :now,
        dispatch_parked = false
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING name, queue_name, dispatch_generation, NOT execution_active AS publish
    """
)

REGISTER_WORKFLOW = text(
    f"""
    INSERT INTO {SCHEMA}.registered_workflows (
        name, first_registered_at_epoch_ms, last_registered_at_epoch_ms, last_executor_id)
    VALUES (:name, :now, :now, :executor_id)
    ON CONFLICT (name) DO UPDATE
    SET last_registered_at_epoch_ms = excluded.last_registered_at_epoch_ms,
        last_executor_id = excluded.last_executor_id
    """
)

REGISTER_QUEUE = text(
    f"""
    INSERT INTO {SCHEMA}.queues (
        name, concurrency, worker_concurrency, limiter_limit, limiter_period_ms,
        priority_enabled, updated_at_epoch_ms)
    VALUES (:name, :concurrency, :worker_concurrency, :limiter_limit, :limiter_period_ms,
            :priority_enabled, :now)
    ON CONFLICT (name) DO UPDATE
    SET concurrency = excluded.concurrency,
        worker_concurrency = excluded.worker_concurrency,
        limiter_limit = excluded.limiter_limit,
        limiter_period_ms = excluded.limiter_period_ms,
        priority_enabled = excluded.priority_enabled,
        updated_at_epoch_ms = excluded.updated_at_epoch_ms
    """
)

# Only when the workflow's row could not be updated (it is no longer PENDING).
RELEASE_FENCE = text("SELECT pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))")

KEEP_TIME = text(
    f"SELECT kind, workflow_uuid, parent_workflow_id, name, queue_name, generation "
    f"FROM {SCHEMA}.keep_time(:now, :limit)"
)

RECOVER_WORKFLOWS = text(
    f"SELECT workflow_uuid, name, queue_name, generation, reason "
    f"FROM {SCHEMA}.recover_workflows(:now, :grace_ms, :limit, :app_version, :executor_id)"
)

# One statement, one transaction: the whole cost of a step's first execution. It also
# returns the workflow's status, so a cancellation is noticed at every step boundary
# without a round trip of its own.
#
# It is written only by the execution that owns the workflow (:owner_token, set by its
# claim). The row lock (FOR SHARE) orders it against a claim by another execution (an
# UPDATE of the row): the claim waits for this statement and then reads its checkpoint,
# or this statement waits for the claim and then finds another owner and writes
# nothing. Returns (the workflow's status, or NULL: not the owner; whether it wrote).
# A step's row written again (a retry's next attempt, its outcome), never once complete.
_STEP_UPSERT = """ON CONFLICT (workflow_uuid, function_id) DO UPDATE
    SET output = excluded.output,
        error = excluded.error,
        attempts = excluded.attempts,
        attempt_log = excluded.attempt_log,
        retry_due_at_epoch_ms = excluded.retry_due_at_epoch_ms,
        completed_at_epoch_ms = excluded.completed_at_epoch_ms,
        child_workflow_id = excluded.child_workflow_id
    WHERE o.completed_at_epoch_ms IS NULL"""

RECORD_STEP = text(
    f"""
    WITH owner AS (
        SELECT w.status FROM {SCHEMA}.workflow_status AS w
        WHERE w.workflow_uuid = :workflow_uuid AND w.owner_token = :owner_token
        FOR SHARE
    ), recorded AS (
    INSERT INTO {SCHEMA}.operation_outputs AS o (
        workflow_uuid, function_id, function_name, output, error, attempts, attempt_log,
        retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
        child_workflow_id, max_attempts)
    SELECT :workflow_uuid, :function_id, :function_name, :output, :error, :attempts,
           :attempt_log, :retry_due_at_epoch_ms, :started_at_epoch_ms,
           :completed_at_epoch_ms, :child_workflow_id, :max_attempts
    FROM owner
    {_STEP_UPSERT}
    RETURNING 1
    )
    SELECT (SELECT status FROM owner), EXISTS (SELECT 1 FROM recorded)
    """
)

# RECORD_STEP for several checkpoints of (usually) several workflows in one statement
# (group commit, see store/group_commit.py): :rows is a JSON array of RECORD_STEP's
# parameters. Per row, the same owner condition and row lock (taken in the workflows'
# order, as any multi-row lock should be; one primary-key lookup per row: a join would
# let the planner scan the whole table); returns (workflow_uuid, function_id, status or
# NULL, whether it wrote) per row.
RECORD_STEPS = text(
    f"""
    WITH batch AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS b (
            workflow_uuid text, owner_token bigint, function_id integer,
            function_name text, output text, error text, attempts integer,
            attempt_log text, retry_due_at_epoch_ms bigint, started_at_epoch_ms bigint,
            completed_at_epoch_ms bigint, child_workflow_id text, max_attempts integer)
    ), owner AS (
        SELECT w.workflow_uuid, w.status
        FROM (SELECT DISTINCT workflow_uuid, owner_token FROM batch ORDER BY 1) AS b
        CROSS JOIN LATERAL (
            SELECT s.workflow_uuid, s.status FROM {SCHEMA}.workflow_status AS s
            WHERE s.workflow_uuid = b.workflow_uuid AND s.owner_token = b.owner_token
            FOR SHARE
        ) AS w
    ), recorded AS (
    INSERT INTO {SCHEMA}.operation_outputs AS o (
        workflow_uuid, function_id, function_name, output, error, attempts, attempt_log,
        retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
        child_workflow_id, max_attempts)
    SELECT b.workflow_uuid, b.function_id, b.function_name, b.output, b.error, b.attempts,
           b.attempt_log, b.retry_due_at_epoch_ms, b.started_at_epoch_ms,
           b.completed_at_epoch_ms, b.child_workflow_id, b.max_attempts
    FROM batch AS b JOIN owner USING (workflow_uuid)
    {_STEP_UPSERT}
    RETURNING o.workflow_uuid, o.function_id
    )
    SELECT b.workflow_uuid, b.function_id, owner.status, r.function_id IS NOT NULL
    FROM batch AS b
    LEFT JOIN owner USING (workflow_uuid)
    LEFT JOIN recorded AS r USING (workflow_uuid, function_id)
    """
)

# Records the outcome and lets go of the fence in the same statement. The unlock runs
# before the commit; a claimer that gets the lock in between blocks on this row and
# then sees the finished status (see claim_workflow).
COMPLETE_WORKFLOW = text(
    f"""
    UPDATE {SCHEMA}.workflow_status
    SET status = :status, output = :output, error = :error, execution_active = false,
        updated_at_epoch_ms = :now, completed_at_epoch_ms = :now
    WHERE workflow_uuid = :workflow_uuid AND status = 'PENDING'
    RETURNING pg_advisory_unlock(hashtextextended(:workflow_uuid, 0))
    """
)

_WORKFLOW_COLUMNS = """
    workflow_uuid, status, name, queue_name, inputs, output, error, authenticated_user,
    executor_id, recovery_attempts, max_recovery_attempts, created_at_epoch_ms,
    updated_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms, parent_workflow_id,
    deduplication_id, priority, workflow_timeout_ms,
    COALESCE(workflow_deadline_epoch_ms, started_at_epoch_ms + workflow_timeout_ms)
        AS workflow_deadline_epoch_ms,
    authenticated_roles, assumed_role, application_version
"""

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

LIST_STEPS = text(
    f"""
    SELECT function_id, function_name, output, error, child_workflow_id, attempts,
           attempt_log, retry_due_at_epoch_ms, started_at_epoch_ms, completed_at_epoch_ms,
           max_attempts
    FROM {SCHEMA}.operation_outputs
    WHERE workflow_uuid = :workflow_uuid
    ORDER BY function_id
    """
)


def list_workflows(
    *, conditions: list[str], descending: bool, limit: bool, offset: bool
) -> TextClause:
    """Builds the workflow listing from fixed condition fragments (values stay bound)."""
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {_WORKFLOW_COLUMNS} FROM {SCHEMA}.workflow_status {where} "
        f"ORDER BY created_at_epoch_ms {order}, workflow_uuid {order}"
    )
    if limit:
        sql += " LIMIT :limit"
    if offset:
        sql += " OFFSET :offset"
    return text(sql)


# A worker leaving (warm shutdown): its version no longer counts as running; when a
# worker of that version was last seen is kept (version_last_seen: now, here; the
# row's last sweep, by the table's trigger).
FORGET_WORKER = text(
    f"""
    WITH gone AS (
        DELETE FROM {SCHEMA}.worker_versions WHERE executor_id = :executor_id
        RETURNING application_version, executor_id
    )
    INSERT INTO {SCHEMA}.version_last_seen AS s (
        application_version, last_seen_epoch_ms, executor_id)
    SELECT application_version, :now, executor_id FROM gone
    ON CONFLICT (application_version) DO UPDATE
    SET last_seen_epoch_ms = GREATEST(s.last_seen_epoch_ms, excluded.last_seen_epoch_ms),
        executor_id = CASE WHEN excluded.last_seen_epoch_ms >= s.last_seen_epoch_ms
                           THEN excluded.executor_id ELSE s.executor_id END
    """
)

# Whether some worker has registered (served) a workflow name.
IS_REGISTERED = text(
    f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.registered_workflows WHERE name = :name)"
)

# The workers that said which version they run, newest first.
LIST_WORKER_VERSIONS = text(
    f"SELECT executor_id, application_version, last_seen_epoch_ms "
    f"FROM {SCHEMA}.worker_versions ORDER BY last_seen_epoch_ms DESC"
)


# -- the application database --------------------------------------------------------

GET_TRANSACTION_OUTPUT = text(
    f"SELECT function_name, output, error FROM {SCHEMA}.transaction_outputs "
    "WHERE workflow_uuid = :workflow_uuid AND function_id = :function_id"
)

# Inside the user's transaction: the outcome commits with the user's writes, or not at all.
RECORD_TRANSACTION_OUTPUT = text(
    f"""
    INSERT INTO {SCHEMA}.transaction_outputs (
        workflow_uuid, function_id, function_name, output, error, created_at_epoch_ms)
    VALUES (:workflow_uuid, :function_id, :function_name, :output, :error, :now)
    """
)


def driver_sql(clause: TextClause) -> str:
    """The statement with the driver's placeholders, for ``exec_driver_sql``.

    The hot statements of an execution skip SQLAlchemy's compilation and parameter
    processing (tens of microseconds a statement). The claim goes through
    ``exec_driver_sql`` (SQLAlchemy's events see it); the step checkpoint and the outcome
    go to the driver's cursor directly (``WorkflowExecution``'s listeners see them).
    """
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", clause.text)


# Per step and per execution, in the driver's placeholder style.
RECORD_STEP_SQL = driver_sql(RECORD_STEP)
RECORD_STEPS_SQL = driver_sql(RECORD_STEPS)
COMPLETE_WORKFLOW_SQL = driver_sql(COMPLETE_WORKFLOW)
RESCHEDULE_WORKFLOW_SQL = driver_sql(RESCHEDULE_WORKFLOW)
RELEASE_WORKFLOW_SQL = driver_sql(RELEASE_WORKFLOW)
RELEASE_FENCE_SQL = driver_sql(RELEASE_FENCE)
CLAIM_WORKFLOW_SQL = driver_sql(CLAIM_WORKFLOW)
CALL_WORKFLOW_SQL = driver_sql(CALL_WORKFLOW)
