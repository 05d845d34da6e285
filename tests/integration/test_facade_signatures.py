"""``DBOS`` and ``DBOSClient`` offer the operations they share with the same signatures,
so the two facades cannot drift apart: where they differ, DBOS Transact 3.4's own
``DBOS`` and ``DBOSClient`` differ the same way (each facade follows its DBOS class).

No services: this reads the classes only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from celery_durable import DBOS, DBOSClient

# serialization_type's annotation and default, as inspect shows them.
FORMAT = "'WorkflowSerializationFormat | None' = <WorkflowSerializationFormat.DEFAULT: 'None'>"

# Where DBOS 3.4's own classes differ (dbos/_dbos.py, dbos/_client.py): the method's
# signature on DBOS, then on DBOSClient.
DBOS_3_4_DIFFERENCES = {
    # DBOS.send's idempotency_key is keyword-only; DBOSClient.send's is positional.
    "send": (
        "(destination_id: 'str', message: 'Any', topic: 'str | None' = None, *, "
        "idempotency_key: 'str | None' = None, serialization_type: " + FORMAT + ", "
        "send_to_forks: 'bool' = False, shard_key: 'str | None' = None) -> 'None'",
        "(destination_id: 'str', message: 'Any', topic: 'str | None' = None, "
        "idempotency_key: 'str | None' = None, *, serialization_type: " + FORMAT + ", "
        "send_to_forks: 'bool' = False, shard_key: 'str | None' = None) -> 'None'",
    ),
    "send_async": (
        "async (destination_id: 'str', message: 'Any', topic: 'str | None' = None, *, "
        "idempotency_key: 'str | None' = None, serialization_type: " + FORMAT + ", "
        "send_to_forks: 'bool' = False, shard_key: 'str | None' = None) -> 'None'",
        "async (destination_id: 'str', message: 'Any', topic: 'str | None' = None, "
        "idempotency_key: 'str | None' = None, *, serialization_type: " + FORMAT + ", "
        "send_to_forks: 'bool' = False, shard_key: 'str | None' = None) -> 'None'",
    ),
    # Only DBOS.destroy stops a worker (waiting for its workflows) and forgets the registry.
    "destroy": (
        "(*, destroy_registry: 'bool' = False, workflow_completion_timeout_sec: 'int' = 0) "
        "-> 'None'",
        "() -> 'None'",
    ),
    # Only DBOS.retrieve_workflow can hand out a handle to a workflow not yet written.
    "retrieve_workflow": (
        "(workflow_id: 'str', existing_workflow: 'bool' = True, *, "
        "shard_key: 'str | None' = None) -> 'WorkflowHandle[Any]'",
        "(workflow_id: 'str', *, shard_key: 'str | None' = None) -> 'WorkflowHandle[Any]'",
    ),
    # DBOSClient.register_queue orders its parameters otherwise, defaults on_conflict to
    # "always_update" and takes application_name (a producer may register for another).
    "register_queue": (
        "(name: 'str', *, worker_concurrency: 'int | None' = None, "
        "global_concurrency: 'int | None' = None, "
        "partition_concurrency: 'int | None' = None, "
        "partition_worker_concurrency: 'int | None' = None, "
        "partition_limiter: 'QueueRateLimit | None' = None, "
        "limiter: 'QueueRateLimit | None' = None, polling_interval_sec: 'float' = 1.0, "
        "on_conflict: 'OnConflict' = 'update_if_latest_version', "
        "concurrency: 'int | None' = None) -> 'Queue'",
        "(name: 'str', *, global_concurrency: 'int | None' = None, "
        "partition_concurrency: 'int | None' = None, "
        "partition_worker_concurrency: 'int | None' = None, "
        "partition_limiter: 'QueueRateLimit | None' = None, "
        "limiter: 'QueueRateLimit | None' = None, "
        "worker_concurrency: 'int | None' = None, polling_interval_sec: 'float' = 1.0, "
        "on_conflict: 'OnConflict' = 'always_update', "
        "application_name: 'str | None' = None, "
        "concurrency: 'int | None' = None) -> 'Queue'",
    ),
    "register_queue_async": (
        "async (name: 'str', *, worker_concurrency: 'int | None' = None, "
        "global_concurrency: 'int | None' = None, "
        "partition_concurrency: 'int | None' = None, "
        "partition_worker_concurrency: 'int | None' = None, "
        "partition_limiter: 'QueueRateLimit | None' = None, "
        "limiter: 'QueueRateLimit | None' = None, polling_interval_sec: 'float' = 1.0, "
        "on_conflict: 'OnConflict' = 'update_if_latest_version', "
        "concurrency: 'int | None' = None) -> 'Queue'",
        "async (name: 'str', *, global_concurrency: 'int | None' = None, "
        "partition_concurrency: 'int | None' = None, "
        "partition_worker_concurrency: 'int | None' = None, "
        "partition_limiter: 'QueueRateLimit | None' = None, "
        "limiter: 'QueueRateLimit | None' = None, "
        "worker_concurrency: 'int | None' = None, polling_interval_sec: 'float' = 1.0, "
        "on_conflict: 'OnConflict' = 'always_update', "
        "application_name: 'str | None' = None, "
        "concurrency: 'int | None' = None) -> 'Queue'",
    ),
    "retrieve_workflow_async": (
        "async (workflow_id: 'str', existing_workflow: 'bool' = True, *, "
        "shard_key: 'str | None' = None) -> 'WorkflowHandleAsync[Any]'",
        "async (workflow_id: 'str', *, shard_key: 'str | None' = None) "
        "-> 'WorkflowHandleAsync[Any]'",
    ),
    # DBOS.create_schedule takes the workflow function; DBOSClient's names it (it has
    # no code), with its class and owning application.
    "create_schedule": (
        "(*, schedule_name: 'str', workflow_fn: 'Callable[..., Any]', schedule: 'str', "
        "context: 'Any' = None, automatic_backfill: 'bool' = False, "
        "cron_timezone: 'str | None' = None, queue_name: 'str | None' = None, "
        "shard_key: 'str | None' = None) -> 'None'",
        "(*, schedule_name: 'str', workflow_name: 'str', schedule: 'str', "
        "context: 'Any' = None, workflow_class_name: 'str | None' = None, "
        "automatic_backfill: 'bool' = False, cron_timezone: 'str | None' = None, "
        "queue_name: 'str | None' = None, application_name: 'str | None' = None, "
        "shard_key: 'str | None' = None) -> 'None'",
    ),
    "create_schedule_async": (
        "async (*, schedule_name: 'str', workflow_fn: 'Callable[..., Any]', "
        "schedule: 'str', context: 'Any' = None, automatic_backfill: 'bool' = False, "
        "cron_timezone: 'str | None' = None, queue_name: 'str | None' = None, "
        "shard_key: 'str | None' = None) -> 'None'",
        "async (*, schedule_name: 'str', workflow_name: 'str', schedule: 'str', "
        "context: 'Any' = None, workflow_class_name: 'str | None' = None, "
        "automatic_backfill: 'bool' = False, cron_timezone: 'str | None' = None, "
        "queue_name: 'str | None' = None, application_name: 'str | None' = None, "
        "shard_key: 'str | None' = None) -> 'None'",
    ),
    # The same way, apply_schedules' entries: ScheduleInput (workflow_fn) on DBOS,
    # ClientScheduleInput (workflow_name) on DBOSClient.
    "apply_schedules": (
        "(schedules: 'list[ScheduleInput]') -> 'None'",
        "(schedules: 'list[ClientScheduleInput]') -> 'None'",
    ),
    "apply_schedules_async": (
        "async (schedules: 'list[ScheduleInput]') -> 'None'",
        "async (schedules: 'list[ClientScheduleInput]') -> 'None'",
    ),
}

# Operations both facades must keep offering (a rename on one side fails here too).
SHARED = {
    "apply_schedules",
    "apply_schedules_async",
    "backfill_schedule",
    "cancel_workflow",
    "create_schedule",
    "create_schedule_async",
    "delete_schedule",
    "delete_schedule_async",
    "get_schedule",
    "get_schedule_async",
    "list_schedules",
    "list_schedules_async",
    "pause_schedule",
    "resume_schedule",
    "trigger_schedule",
    "delete_queue",
    "delete_queue_async",
    "cancel_workflow_async",
    "cancel_workflows",
    "cancel_workflows_async",
    "delete_workflow",
    "delete_workflow_async",
    "delete_workflows",
    "delete_workflows_async",
    "retrieve_workflow_async",
    "rewind_workflow",
    "rewind_workflow_async",
    "set_workflow_delay",
    "set_workflow_delay_async",
    "update_workflow_attributes",
    "update_workflow_attributes_async",
    "wait_first",
    "wait_first_async",
    "destroy",
    "fork_workflow",
    "fork_workflow_async",
    "get_all_events",
    "get_all_events_async",
    "get_event",
    "get_event_async",
    "list_queues",
    "list_queues_async",
    "get_latest_application_version",
    "get_latest_application_version_async",
    "list_application_versions",
    "list_application_versions_async",
    "set_latest_application_version",
    "set_latest_application_version_async",
    "list_queued_workflows",
    "list_queued_workflows_async",
    "list_workflow_steps",
    "list_workflow_steps_async",
    "list_workflows",
    "list_workflows_async",
    "read_stream",
    "read_stream_async",
    "register_queue",
    "register_queue_async",
    "resume_workflow",
    "retrieve_queue",
    "retrieve_queue_async",
    "resume_workflow_async",
    "resume_workflows",
    "resume_workflows_async",
    "retrieve_workflow",
    "send",
    "send_async",
    "send_bulk",
    "send_bulk_async",
    "read_stream_offset",
    "read_stream_offset_async",
}


def signature(method: Callable[..., Any]) -> str:
    """The method's signature as callers see it (without ``self``/``cls``), marked
    ``async`` for a coroutine function."""
    full = inspect.signature(method)
    parameters = [p for name, p in full.parameters.items() if name not in ("self", "cls")]
    shown = str(full.replace(parameters=parameters))
    return f"async {shown}" if inspect.iscoroutinefunction(method) else shown


def shared_operations() -> set[str]:
    return {
        name
        for name in dir(DBOSClient)
        if not name.startswith("_")
        and callable(getattr(DBOSClient, name))
        and callable(getattr(DBOS, name, None))
    }


def test_the_facades_share_the_operations_they_should() -> None:
    assert shared_operations() == SHARED


def test_shared_operations_have_the_same_signature_except_where_dbos_differs() -> None:
    drifted = {}
    for name in sorted(shared_operations()):
        pair = (signature(getattr(DBOS, name)), signature(getattr(DBOSClient, name)))
        same = (pair[0], pair[0])
        if pair != DBOS_3_4_DIFFERENCES.get(name, same):
            drifted[name] = pair
    assert drifted == {}
