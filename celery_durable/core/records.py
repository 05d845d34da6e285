"""Records read from the system database: frozen, keyword-only dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict


class WorkflowStatusString(StrEnum):
    """The states of a workflow, with DBOS's names."""

    DELAYED = "DELAYED"
    ENQUEUED = "ENQUEUED"
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"


# The queue DBOS reports for a workflow resumed or forked without a queue of its own
# (DBOS's ``dbos._utils.INTERNAL_QUEUE_NAME``). Here it names no queue: the workflow's
# messages still go to its Celery queue.
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"

TERMINAL_STATUSES = frozenset(
    {
        WorkflowStatusString.SUCCESS,
        WorkflowStatusString.ERROR,
        WorkflowStatusString.CANCELLED,
        WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED,
    }
)


@dataclass(frozen=True, kw_only=True)
class WorkflowStatus:
    """One workflow, as ``DBOS.retrieve_workflow(...).get_status()`` returns it.

    Field names follow DBOS Transact's ``WorkflowStatus``; times are epoch milliseconds.
    ``input`` is ``{"args": [...], "kwargs": {...}}``; ``output`` and ``error`` are the
    deserialized outcome (``error`` is the exception instance).
    """

    workflow_id: str
    status: str
    name: str
    queue_name: str | None
    # The text itself when the row's serializer is a custom one this process lacks.
    input: dict[str, Any] | str | None
    output: Any
    error: BaseException | None
    authenticated_user: str | None
    executor_id: str | None
    recovery_attempts: int
    max_recovery_attempts: int
    created_at: int
    updated_at: int
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None
    parent_workflow_id: str | None
    deduplication_id: str | None
    priority: int
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    # DBOSContextSetAuth: the roles granted to ``authenticated_user``, and the role
    # assumed by the code that started the workflow.
    authenticated_roles: list[str] | None = None
    assumed_role: str | None = None
    # The application version it runs on: given when it was created, or stamped by the
    # first worker that claimed it (None until then: any worker may).
    app_version: str | None = None
    # A method's receiver (``@DBOS.dbos_class``): its class's registered name, and the
    # ``config_name`` of a ``DBOSConfiguredInstance`` (None for a class method).
    class_name: str | None = None
    config_name: str | None = None
    # DBOS 3.4's names for what the fields above also hold: ``completed_at`` is
    # ``completed_at_epoch_ms``; ``dequeued_at`` is ``started_at_epoch_ms`` (when a
    # worker first took it off its queue and started it).
    completed_at: int | None = None
    dequeued_at: int | None = None
    # The workflow this one is a fork of (None: not a fork), and whether any workflow
    # was forked from this one.
    forked_from: str | None = None
    was_forked_from: bool = False
    # Until when a DELAYED workflow waits before it is enqueued (None once it is not
    # DELAYED any more, or was never delayed).
    delay_until_epoch_ms: int | None = None
    # ``update_workflow_attributes``' JSON object (None: none set).
    attributes: dict[str, Any] | None = None
    # The schedule that started it (None: not started by a schedule).
    schedule_name: str | None = None
    # A partitioned queue's key (``SetEnqueueOptions(queue_partition_key=)``).
    queue_partition_key: str | None = None
    # What DBOS 3.4 has and a celery_durable deployment never sets: the owning
    # application of a shared system database, DBOS Cloud's application id and a
    # sharded database's keys. Always None here, as DBOS reports them for a workflow
    # without them.
    application_name: str | None = None
    app_id: str | None = None
    shard_key: str | None = None
    parent_shard_key: str | None = None
    # Ours: the Celery queue its messages are published to. Every workflow has one;
    # ``queue_name`` is the DBOS queue it was enqueued on, as DBOS reports it (None when
    # started or called without one; ``_dbos_internal_queue`` once resumed or forked
    # without a queue).
    celery_queue: str | None = None


@dataclass(frozen=True, kw_only=True)
class RawWorkflowRow:
    """A ``workflow_status`` row before its serialized columns are decoded."""

    workflow_uuid: str
    status: str
    name: str
    queue_name: str | None
    inputs: str | None  # None: not loaded (``load_input=False``)
    output: str | None
    error: str | None
    authenticated_user: str | None
    executor_id: str | None
    recovery_attempts: int
    max_recovery_attempts: int
    created_at_epoch_ms: int
    updated_at_epoch_ms: int
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None
    parent_workflow_id: str | None
    deduplication_id: str | None
    priority: int
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    authenticated_roles: str | None = None  # a JSON list
    assumed_role: str | None = None
    application_version: str | None = None
    forked_from: str | None = None
    was_forked_from: bool = False
    delay_until_epoch_ms: int | None = None
    attributes: dict[str, Any] | None = None
    schedule_name: str | None = None
    queue_partition_key: str | None = None
    celery_queue: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One durable operation of a workflow (step, transaction, child, sleep, ...) as
    ``operation_outputs`` holds it: written after each attempt, loaded for replay.

    ``function_id`` is DBOS's: a workflow's operations are numbered 1, 2, 3, ... in
    call order. ``completed_at_epoch_ms`` is None while a step is between attempts (in
    backoff); ``retry_due_at_epoch_ms`` then says when its next attempt may start.
    ``output``, ``error`` and ``attempt_log`` are serialized text. ``max_attempts`` is
    a step's attempt budget (None: an operation that is not retried).
    """

    function_id: int
    function_name: str
    output: str | None
    error: str | None
    attempts: int
    attempt_log: str | None
    retry_due_at_epoch_ms: int | None
    started_at_epoch_ms: int
    completed_at_epoch_ms: int | None
    child_workflow_id: str | None = None
    max_attempts: int | None = None

    @property
    def completed(self) -> bool:
        return self.completed_at_epoch_ms is not None


class StepInfo(TypedDict):
    """One recorded operation of a workflow, as ``list_workflow_steps`` returns it: DBOS
    3.4's ``StepInfo`` keys first, then what celery_durable adds (a step's attempts)."""

    function_id: int
    function_name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    child_shard_key: str | None  # always None: the system database is not sharded
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None  # None while the step waits for its next attempt
    task_id: str | None  # a DBOS.run_task call's last attempt's Celery task id
    attempts: int
    max_attempts: int | None
    retry_due_at_epoch_ms: int | None
    attempt_history: list[dict[str, Any]]


class VersionInfo(TypedDict):
    """An application version, as DBOS 3.4's ``list_application_versions`` returns it:
    registered when a process launched or a worker started with it; the one with the
    newest ``version_timestamp`` is the latest."""

    version_id: str
    version_name: str
    version_timestamp: int
    created_at: int
    application_name: str | None  # always None: no applications share a database here


@dataclass(frozen=True, kw_only=True)
class Wait:
    """What a rescheduled workflow waits for: a message on ``key`` (``kind`` "msg",
    ``target`` itself) or the event ``key`` of ``target`` (``kind`` "event")."""

    kind: str
    target: str
    key: str
