"""What the system store takes and returns: frozen, keyword-only dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from celery_durable.core.records import StepRecord


@dataclass(frozen=True, kw_only=True)
class NewWorkflow:
    workflow_uuid: str
    name: str
    status: Literal["ENQUEUED", "PENDING"]
    # The Celery queue its messages go to; the DBOS queue it is enqueued on (None: not
    # enqueued on one), which WorkflowStatus.queue_name reports.
    queue_name: str | None
    inputs: str
    authenticated_user: str | None
    max_recovery_attempts: int
    parent_workflow_id: str | None = None
    deduplication_id: str | None = None
    priority: int = 0
    # A producer without the code: refuse names no worker has registered.
    require_registered: bool = False
    # SetWorkflowTimeout: the timeout, and the deadline when it is fixed at creation
    # (None with a timeout: fixed when a queue first admits it). A child without its
    # own timeout inherits its parent's deadline.
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    # A delayed start: the workflow is DELAYED until then (status must be ENQUEUED).
    delay_until_epoch_ms: int | None = None
    # DBOSContextSetAuth: the roles granted to authenticated_user (a JSON list) and the
    # assumed role. With inherit_identity (a child), the user, roles and assumed role
    # are copied from the parent's row instead.
    authenticated_roles: str | None = None
    assumed_role: str | None = None
    inherit_identity: bool = False
    # Without a timeout of its own, a child takes its parent's deadline unless False
    # (started in a SetWorkflowTimeout block, even SetWorkflowTimeout(None)).
    inherit_deadline: bool = True
    # The application version it must run on (None: the first worker to claim it
    # stamps its own).
    application_version: str | None = None
    # The partition of a partitioned queue its limits apply to (DBOS 3.x).
    queue_partition_key: str | None = None
    # The schedule whose tick this workflow is (None: not started by a schedule).
    schedule_name: str | None = None
    # SetWorkflowAttributes: a JSON object (None: none).
    attributes: str | None = None
    dbos_queue_name: str | None = None
    # How the starter treats a conflict (not columns): SetWorkflowID's reuse policy
    # "reject" (an id in use raises) and SetEnqueueOptions' duplication policy
    # "return-existing" (a taken deduplication id returns the holder's id).
    reject_reused_id: bool = False
    return_deduplicated: bool = False


ClaimOutcome = Literal[
    "claimed",
    "busy",
    "stale",
    "finished",
    "missing",
    "exceeded",
    "throttled",
    "version",
    "unrecorded",
    "recorded",
]


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """Where and how to publish a workflow's next message."""

    name: str
    queue_name: str | None
    generation: int


@dataclass(frozen=True, kw_only=True)
class Woken:
    """A waiting workflow that a message or an event made due: publish it."""

    workflow_uuid: str
    dispatch: Dispatch


@dataclass(frozen=True, kw_only=True)
class Sent:
    """The result of sending a message.

    ``outcome`` is ``sent``, ``duplicate`` (its message id was sent before: nothing
    was added), ``missing`` (no such destination) or ``replayed`` (an in-workflow send
    whose checkpoint existed). ``sender_status`` is the sending workflow's status (a
    cancelled sender stops there).
    """

    outcome: str
    wake: Dispatch | None
    sender_status: str | None


@dataclass(frozen=True, kw_only=True)
class Received:
    """One attempt to take a message or an event in workflow code."""

    found: bool
    value: str | None
    workflow_status: str | None


@dataclass(frozen=True, kw_only=True)
class Rescheduled:
    """The release of a waiting workflow: its new generation and due time."""

    generation: int
    due_at_epoch_ms: int
    parked: bool


@dataclass(frozen=True, kw_only=True)
class QueueLimits:
    """A queue's row: its limits (enforced when a worker claims one of its workflows).

    ``registered``: declared with ``DBOS.register_queue`` (workers that consume the
    default Celery queue consume it too); ``application_version``: the version of the
    process that registered it.
    """

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    limiter_limit: int | None
    limiter_period_ms: int | None
    priority_enabled: bool
    partition_concurrency: int | None = None
    partition_worker_concurrency: int | None = None
    partition_limiter_limit: int | None = None
    partition_limiter_period_ms: int | None = None
    polling_interval_sec: float = 1.0
    registered: bool = False
    application_version: str | None = None

    @property
    def partitioned(self) -> bool:
        """Any per-partition limit makes every enqueue name a partition (as in DBOS)."""
        return (
            self.partition_concurrency is not None
            or self.partition_worker_concurrency is not None
            or self.partition_limiter_limit is not None
        )


@dataclass(frozen=True, kw_only=True)
class WorkerVersion:
    """A worker and the application version it runs, as its last sweep recorded."""

    executor_id: str
    application_version: str
    last_seen_epoch_ms: int


@dataclass(frozen=True, kw_only=True)
class Redispatch:
    """A workflow the recovery sweep publishes again, with its new generation."""

    workflow_uuid: str
    name: str
    queue_name: str | None
    generation: int
    reason: str
    # The stored trace context it continues (the ``dbos.otelContext`` attribute), for a
    # workflow a producer without a broker enqueued.
    trace_carrier: Any = None


@dataclass(frozen=True, kw_only=True)
class Timekeeping:
    """What one timekeeping pass did: workflows cancelled at their deadline (with their
    parents, to wake), and DELAYED workflows now due (to publish)."""

    cancelled: list[tuple[str, str | None]]
    due: list[Redispatch]


@dataclass(frozen=True, kw_only=True)
class InsertedWorkflow:
    """The result of inserting a workflow: the new row, or the one already there."""

    inserted: bool
    name: str
    status: str
    output: str | None
    error: str | None


@dataclass(frozen=True, kw_only=True)
class Claim:
    """The result of trying to claim a workflow for one execution.

    ``outcome`` is ``claimed`` (this execution owns the fence), ``busy`` (another
    execution owns it), ``stale`` (the delivery is older than the workflow's current
    dispatch), ``finished`` (not runnable: terminal or cancelled), ``missing`` (no such
    workflow) or ``exceeded`` (its owners died too often: now
    MAX_RECOVERY_ATTEMPTS_EXCEEDED), ``throttled`` (its queue's limits hold it for
    ``wait_ms``) or ``version`` (it runs on application version ``app_version``, not the
    claimer's: with ``wait_ms`` a worker of that version is alive, deliver it again;
    without, it was parked for the sweep of one).
    """

    outcome: ClaimOutcome
    name: str | None
    status: str | None
    inputs: str | None
    authenticated_user: str | None
    checkpoints: dict[int, StepRecord]
    wait_ms: int | None = None
    parent_workflow_id: str | None = None
    # A direct call that found its workflow finished: the recorded (output, error).
    recorded: tuple[str | None, str | None] | None = None
    app_version: str | None = None
    # A claim after a task's outcome (``reported``) that woke the workflow: its
    # dispatch (for the message that runs it when this claim did not).
    woken: Dispatch | None = None


@dataclass(frozen=True, kw_only=True)
class ReportedOutcome:
    """A Celery task's outcome for attempt ``task_id`` of operation ``function_id``,
    recorded by the claim that follows it (``claim_after_task``): a success's
    ``output``, or a failure's ``error``."""

    function_id: int
    task_id: str
    output: str | None
    error: str | None


@dataclass(frozen=True, kw_only=True)
class WorkflowQuery:
    """Which workflows ``WorkflowStore.list_workflows`` returns: every field that is
    not None narrows the listing (lists: any of their values; times: epoch ms,
    inclusive bounds). ``queues_only`` keeps workflows that have a queue and, unless
    ``statuses`` says otherwise, are still DELAYED, ENQUEUED or PENDING."""

    workflow_ids: list[str] | None = None
    statuses: list[str] | None = None
    names: list[str] | None = None
    app_versions: list[str] | None = None
    forked_from: list[str] | None = None
    parent_workflow_ids: list[str] | None = None
    users: list[str] | None = None
    queue_names: list[str] | None = None
    executor_ids: list[str] | None = None
    workflow_id_prefixes: list[str] | None = None
    schedule_names: list[str] | None = None
    created_from_ms: int | None = None
    created_until_ms: int | None = None
    completed_from_ms: int | None = None
    completed_until_ms: int | None = None
    dequeued_from_ms: int | None = None
    dequeued_until_ms: int | None = None
    was_forked_from: bool | None = None
    is_fork: bool | None = None
    has_parent: bool | None = None
    attributes: str | None = None  # a JSON object every listed workflow's contains
    queues_only: bool = False
    limit: int | None = None
    offset: int | None = None
    sort_desc: bool = False
    load_input: bool = True
    load_output: bool = True
