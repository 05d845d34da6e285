"""celery_durable: DBOS-style durable workflows and steps on Celery.

The public surface is what this module exports (and :mod:`celery_durable.error`);
everything else is internal. The package is layered, each layer importing only from the
ones before it: ``core`` (records, serialization, signals) -> ``store`` (all SQL) ->
``engine`` (replay, steps, transactions, waits; no Celery) -> ``integration`` (Celery
tasks, publishing, recovery) -> ``service`` (the operations the facades share) -> ``api``
(this surface) -> ``dashboard`` -> ``cli``.
"""

from celery_durable.api.classes import DBOSConfiguredInstance
from celery_durable.api.client import DBOSClient
from celery_durable.api.client_schedules import ClientScheduleInput
from celery_durable.api.dbos import DBOS
from celery_durable.api.dbos_migrate import run_dbos_database_migrations
from celery_durable.api.dbos_schedules import ScheduleInput, WorkflowSchedule
from celery_durable.api.debouncer import Debouncer, DebouncerClient
from celery_durable.api.enqueue_options import EnqueueOptions
from celery_durable.api.options import (
    DBOSContextSetAuth,
    DuplicationPolicy,
    SetEnqueueOptions,
    SetWorkflowAttributes,
    SetWorkflowID,
    SetWorkflowTimeout,
    WorkflowIDReusePolicy,
)
from celery_durable.api.options_3x import (
    DBOSContextEnsure,
    KafkaMessage,
    PropagateOtelContext,
)
from celery_durable.api.queues import Queue
from celery_durable.api.sharding import SetShardKey
from celery_durable.core.records import (
    StepInfo,
    VersionInfo,
    WorkflowStatus,
    WorkflowStatusString,
)
from celery_durable.core.serializers import (
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Serializer,
    WorkflowSerializationFormat,
)
from celery_durable.service.context import StepContext, StepStatus
from celery_durable.service.datasources import AsyncSQLAlchemyDatasource, SQLAlchemyDatasource
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.messages import SendMessage
from celery_durable.service.step_calls import StepOptions, StepReservation
from celery_durable.service.task_calls import TaskHandle
from celery_durable.service.types import DBOSConfig
from celery_durable.service.validation import (
    make_pydantic_args_validator,
    pydantic_args_validator,
)

__all__ = [
    "DBOS",
    "AsyncSQLAlchemyDatasource",
    "ClientScheduleInput",
    "DBOSClient",
    "DBOSConfig",
    "DBOSConfiguredInstance",
    "DBOSContextEnsure",
    "DBOSContextSetAuth",
    "DBOSPortableJSONSerializer",
    "Debouncer",
    "DebouncerClient",
    "DuplicationPolicy",
    "EnqueueOptions",
    "KafkaMessage",
    "PortableWorkflowError",
    "PropagateOtelContext",
    "Queue",
    "SQLAlchemyDatasource",
    "ScheduleInput",
    "SendMessage",
    "Serializer",
    "SetEnqueueOptions",
    "SetShardKey",
    "SetWorkflowAttributes",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "StepContext",
    "StepInfo",
    "StepOptions",
    "StepReservation",
    "StepStatus",
    "TaskHandle",
    "VersionInfo",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowIDReusePolicy",
    "WorkflowSchedule",
    "WorkflowSerializationFormat",
    "WorkflowStatus",
    "WorkflowStatusString",
    "make_pydantic_args_validator",
    "pydantic_args_validator",
    "run_dbos_database_migrations",
]
