"""Overviews of a system database, for dashboards and metrics: pages of workflows with
their counts per status, queue depths, and a workflow's messages and streams.

Everything here only reads, and never migrates: a database without the schema raises
:class:`~celery_durable.error.DBOSSchemaMissingError`, whose message names
``celery-durable migrate``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from celery_durable.store.connections import Connections
from celery_durable.store.sql import overview


@dataclass(frozen=True, kw_only=True)
class WorkflowQuery:
    """Which workflows a listing shows (None: no filter on that column).

    ``statuses`` is not applied to the counts per status (they show every status).
    ``application_version`` needs schema version 9 (application versions).
    ``start_epoch_ms``/``end_epoch_ms`` bound the creation time, both inclusive.
    ``exclude_id_prefix`` leaves out the workflows whose id starts with it (the runs of
    schedules: ``sched-``).
    """

    statuses: list[str] | None = None
    name: str | None = None
    queue_name: str | None = None
    start_epoch_ms: int | None = None
    end_epoch_ms: int | None = None
    id_prefix: str | None = None
    authenticated_user: str | None = None
    application_version: str | None = None
    parent_workflow_id: str | None = None
    exclude_id_prefix: str | None = None

    def params(self) -> dict[str, Any]:
        """The filters that are set, by the name of their bound parameter."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class WorkflowSummary:
    """A workflow in a listing: its identity, status and times (no inputs or outputs)."""

    workflow_uuid: str
    name: str
    status: str
    queue_name: str | None
    authenticated_user: str | None
    executor_id: str | None
    recovery_attempts: int
    created_at_epoch_ms: int
    updated_at_epoch_ms: int
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None
    parent_workflow_id: str | None


@dataclass(frozen=True, kw_only=True)
class WorkflowPage:
    """One page of a listing, the counts per status of every page, and their total."""

    workflows: list[WorkflowSummary]
    counts: dict[str, int]
    total: int


@dataclass(frozen=True, kw_only=True)
class QueueDepth:
    """A queue's waiting (ENQUEUED) and running (PENDING) workflows and its limits.

    ``declared`` is False for a queue that has workflows but that no worker declared
    limits for (a plain Celery queue).
    """

    queue_name: str
    enqueued: int
    pending: int
    oldest_enqueued_at_epoch_ms: int | None
    declared: bool
    concurrency: int | None
    worker_concurrency: int | None
    limiter_limit: int | None
    limiter_period_ms: int | None
    priority_enabled: bool


@dataclass(frozen=True, kw_only=True)
class Execution:
    """What a workflow's row says about its execution now.

    ``execution_active``: an execution holds the workflow (its claim set it; a release
    for a backoff or a wait, and the outcome, clear it). While it does, ``executor_id``
    is the claimer's and ``updated_at_epoch_ms`` the claim's time. ``forked_from``: the
    workflow a fork copied.
    """

    status: str
    execution_active: bool
    executor_id: str | None
    updated_at_epoch_ms: int
    next_dispatch_at_epoch_ms: int | None
    forked_from: str | None


@dataclass(frozen=True, kw_only=True)
class Fork:
    """A workflow that a fork of another one created."""

    workflow_uuid: str
    status: str
    created_at_epoch_ms: int


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """A message sent to a workflow, still serialized."""

    topic: str
    message: str
    created_at_epoch_ms: int
    consumed_by_function_id: int | None


class OverviewStore:
    """The overviews of one system database (on the store's pooled connections)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def _all(self, action: str, statement: Any, params: dict[str, Any]) -> list[Any]:
        # One autocommit statement, sent again once on a pooled connection that died.
        return self._connections.run(action, lambda c: list(c.execute(statement, params).all()))

    def page(self, query: WorkflowQuery, *, limit: int, offset: int) -> WorkflowPage:
        """Newest first: ``limit`` workflows from ``offset``, with the counts per status
        of everything the other filters match."""
        params = query.params()
        filters = list(params)
        rows = self._all(
            "listing workflows",
            overview.page_of_workflows(filters),
            params | {"limit": limit, "offset": offset},
        )
        unfiltered = [name for name in filters if name != "statuses"]
        counted = self._all(
            "counting workflows by status",
            overview.counts_by_status(unfiltered),
            {name: params[name] for name in unfiltered},
        )
        counts = {row.status: int(row.workflows) for row in counted}
        shown = query.statuses if query.statuses is not None else list(counts)
        return WorkflowPage(
            workflows=[WorkflowSummary(**row._asdict()) for row in rows],
            counts=counts,
            total=sum(counts.get(status, 0) for status in set(shown)),
        )

    def counts_by_name_and_status(self) -> list[tuple[str, str, int]]:
        """``(name, status, count)`` for every pair that has workflows."""
        rows = self._all(
            "counting workflows by name and status",
            overview.COUNTS_BY_NAME_AND_STATUS,
            {},
        )
        return [(row.name, row.status, int(row.workflows)) for row in rows]

    def queue_depths(self) -> list[QueueDepth]:
        """Every declared queue, and every queue with waiting or running workflows."""
        rows = self._all("reading queue depths", overview.QUEUE_DEPTHS, {})
        return [QueueDepth(**row._asdict()) for row in rows]

    def execution(self, workflow_uuid: str) -> Execution | None:
        """What the workflow's row says about its execution (None: no such workflow)."""
        rows = self._all(
            f"reading the execution of {workflow_uuid}",
            overview.EXECUTION,
            {"workflow_uuid": workflow_uuid},
        )
        return Execution(**rows[0]._asdict()) if rows else None

    def forks_of(self, workflow_uuid: str, *, limit: int) -> list[Fork]:
        """The newest ``limit`` forks of a workflow."""
        rows = self._all(
            f"reading the forks of {workflow_uuid}",
            overview.FORKS_OF,
            {"workflow_uuid": workflow_uuid, "limit": limit},
        )
        return [Fork(**row._asdict()) for row in rows]

    def versions_last_seen(self) -> dict[str, int]:
        """Each application version with when a worker of it was last seen (running
        workers' sweeps, and the record of workers that left)."""
        rows = self._all("reading when versions were last seen", overview.VERSIONS_LAST_SEEN, {})
        return {row.application_version: int(row.last_seen_epoch_ms) for row in rows}

    def messages_to(self, workflow_uuid: str, *, limit: int) -> list[StoredMessage]:
        """The first ``limit`` messages sent to a workflow, oldest first."""
        rows = self._all(
            f"reading the messages of {workflow_uuid}",
            overview.MESSAGES_TO,
            {"workflow_uuid": workflow_uuid, "limit": limit},
        )
        return [StoredMessage(**row._asdict()) for row in rows]

    def stream_keys(self, workflow_uuid: str) -> dict[str, int]:
        """Each stream key of a workflow with how many values it stored (the close
        marker included)."""
        rows = self._all(
            f"reading the streams of {workflow_uuid}",
            overview.STREAM_KEYS,
            {"workflow_uuid": workflow_uuid},
        )
        return {row.key: int(row.stored_values) for row in rows}
