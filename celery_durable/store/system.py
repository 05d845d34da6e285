"""The system database of one process: one set of connections, shared by a small store
per concern.

These stores are the only code that touches a system-database connection. Their public
methods own their transaction. Driver errors are turned into
:class:`~celery_durable.error.DBOSSystemDatabaseError` so callers see one error type
with a message that never contains credentials.
"""

from __future__ import annotations

from celery_durable.store.canvas_store import CanvasStore
from celery_durable.store.claiming import ExecutionStore
from celery_durable.store.connections import Connections
from celery_durable.store.debounce_store import DebounceStore
from celery_durable.store.listener import NotificationListener
from celery_durable.store.management_store import ManagementStore
from celery_durable.store.message_store import MessageStore
from celery_durable.store.operations import OperationStore
from celery_durable.store.overview_store import OverviewStore
from celery_durable.store.queue_store import QueueStore
from celery_durable.store.schedule_store import ScheduleStore
from celery_durable.store.schema import SchemaStore
from celery_durable.store.workers import WorkerRegistry
from celery_durable.store.workflow_store import WorkflowStore


class SystemStore:
    """The system database of one process (pools created lazily, per process).

    Attributes:
        connections: The pools, the fence and the notification listener, shared by:
        schema: migrating, and checking the schema's version;
        workflows: creating workflows, reading their rows and checkpoints;
        executions: claiming a workflow for an execution, waking a parent;
        messages: messages, events and streams outside any workflow;
        operations: recovery, timekeeping, cancel, resume, fork;
        workers: the workflows, queues and versions workers serve;
        queues: queues registered at run time (``DBOS.register_queue``);
        schedules: cron schedules and the pass that fires them;
        overview: read-only overviews for dashboards and metrics;
        management: waiting for the first of several, deleting workflows, their
            attributes and delays;
        canvas: the callbacks of workflows a Celery canvas started, fired once.
        debouncing: DBOS 3.4's debounces.

    Args:
        url: A ``postgresql://`` URL.
        pool_size: Connections kept open per process.
        synchronous_checkpoints: False: executions commit asynchronously.
        session_url: Where the connections that need a session of their own go (the
            fence's advisory locks, LISTEN); see :class:`Connections`.
        listen: False: nothing LISTENs (``use_listen_notify: False``); waiters poll.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        synchronous_checkpoints: bool = True,
        session_url: str | None = None,
        listen: bool = True,
    ) -> None:
        connections = Connections(
            url,
            pool_size=pool_size,
            synchronous_checkpoints=synchronous_checkpoints,
            session_url=session_url,
            listen=listen,
        )
        self.connections = connections
        self.schema = SchemaStore(connections)
        self.workflows = WorkflowStore(connections)
        self.executions = ExecutionStore(connections, self.workflows)
        self.messages = MessageStore(connections)
        self.operations = OperationStore(connections)
        self.workers = WorkerRegistry(connections)
        self.queues = QueueStore(connections)
        self.schedules = ScheduleStore(connections)
        self.overview = OverviewStore(connections)
        self.management = ManagementStore(connections)
        self.canvas = CanvasStore(connections)
        self.debouncing = DebounceStore(connections)

    @property
    def url(self) -> str:
        """The (normalized) URL of the pooled connections."""
        return self.connections.url

    @property
    def notifications(self) -> NotificationListener:
        """Notifications for waiters outside any workflow (started on first use)."""
        return self.connections.notifications

    def dispose(self) -> None:
        """Closes this process's connections."""
        self.connections.dispose()
