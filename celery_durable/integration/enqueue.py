"""Building a new workflow's row: its id, queue, options and serialized inputs."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal, TypedDict

from celery_durable.core.clock import now_epoch_ms
from celery_durable.core.outcomes import encode_roles
from celery_durable.core.serialization import Serializer, writes_portable
from celery_durable.core.serializers import PORTABLE, portable_inputs
from celery_durable.engine.classes import split_receiver
from celery_durable.engine.context import (
    Identity,
    enqueue_options,
    ignore_propagated_deadline,
    in_workflow_code,
    next_workflow_id,
    next_workflow_id_reuse,
    starting_identity,
    workflow_attributes,
    workflow_timeout,
)
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.store import NewWorkflow, QueueLimits


class EnqueueSettings(TypedDict, total=False):
    deduplication_id: str | None
    priority: int | None
    delay_seconds: float | None
    # Given by DBOSClient's options; otherwise SetWorkflowTimeout's block decides.
    workflow_timeout_seconds: float | None
    # Given by DBOSClient's options; otherwise DBOSContextSetAuth's block (or the
    # starting workflow) decides.
    authenticated_user: str | None
    authenticated_roles: list[str] | None
    # The application version it must run on (DBOS's ``app_version``).
    app_version: str | None
    # The partition of a partitioned queue (DBOS 3.x's ``queue_partition_key``).
    queue_partition_key: str | None
    # DBOS 3.4's SetEnqueueOptions(duplication_policy=): "reject" or "return-existing".
    duplication_policy: str | None
    # EnqueueOptions' "attributes" (with "otel_context"'s carrier), merged over the
    # SetWorkflowAttributes block's key by key, as DBOS 3.4 merges them.
    attributes: dict[str, Any] | None


# The options only a queue acts on (DBOS 3.4's list; app_version is not one: it decides
# which workers run any workflow).
_QUEUE_ONLY_OPTIONS = ("deduplication_id", "priority", "queue_partition_key", "delay_seconds")
_RETURN_EXISTING_NEEDS_A_QUEUE = (
    "duplication_policy 'return-existing' requires a queue. It is only supported when "
    "enqueueing a workflow onto a queue."
)


def refuse_queue_only_options() -> None:
    """For a workflow started without a queue (``DBOS.start_workflow``): the block's
    ``SetEnqueueOptions`` must not set what only a queue acts on, as DBOS 3.4 checks it.

    Raises:
        DBOSException: DBOS's text, naming the options set (nothing is written).
    """
    settings: EnqueueSettings = enqueue_options.get() or EnqueueSettings()
    if settings.get("duplication_policy") == "return-existing":
        raise DBOSException(_RETURN_EXISTING_NEEDS_A_QUEUE)
    named = [name for name in _QUEUE_ONLY_OPTIONS if settings.get(name) is not None]
    if named:
        raise DBOSException(
            f"Enqueue option(s) {', '.join(named)} set on a workflow that is not being "
            "enqueued. These options are only supported when enqueueing a workflow onto "
            "a queue."
        )


def new_workflow_row(
    serializer: Serializer,
    spec: WorkflowSpec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    status: Literal["ENQUEUED", "PENDING"],
    queue_name: str,
    limits: QueueLimits | None,
    workflow_id: str | None = None,
    parent_workflow_id: str | None = None,
    options: EnqueueSettings | None = None,
    require_registered: bool = False,
    admitted_later: bool = False,
    application_version: str | None = None,
) -> NewWorkflow:
    """A workflow's row, not yet written.

    ``SetWorkflowID`` names it unless ``workflow_id`` does; ``SetEnqueueOptions`` gives
    its deduplication id, priority and delay unless ``options`` does;
    ``SetWorkflowTimeout`` its timeout; ``DBOSContextSetAuth`` (or the running workflow,
    for a child) its authenticated user and roles unless ``options`` names them. The
    deadline is fixed now, or, for a workflow ``admitted_later`` by a queue, when the
    queue first admits it (as DBOS does). It runs on the options' ``app_version``, or
    ``application_version`` (the configured one), or, with neither, on the version of
    the first worker that claims it. Priority applies on every queue, as in DBOS 3.x.

    Raises:
        DBOSSerializationError: an argument cannot be serialized (nothing is written).
        DBOSException: a deduplication id with a partition key (as in DBOS).
    """
    chosen_id = workflow_id or next_workflow_id.get() or str(uuid.uuid4())
    next_workflow_id.set(None)  # SetWorkflowID names one workflow only.
    settings: EnqueueSettings = options or enqueue_options.get() or EnqueueSettings()
    return_deduplicated = _check_deduplication(settings, status, parent_workflow_id)
    timing = _timing(settings, status, admitted_later)
    identity = _identity(settings, parent_workflow_id)
    return NewWorkflow(
        workflow_uuid=chosen_id,
        name=spec.name,
        status=status,
        queue_name=queue_name,
        inputs=serialized_inputs(serializer, spec, args, kwargs),
        authenticated_user=None if identity is None else identity.user,
        authenticated_roles=None if identity is None else encode_roles(identity.roles),
        assumed_role=None if identity is None else identity.assumed_role,
        inherit_identity=identity is None,
        inherit_deadline=not ignore_propagated_deadline.get(),
        max_recovery_attempts=spec.max_recovery_attempts,
        parent_workflow_id=parent_workflow_id,
        deduplication_id=settings.get("deduplication_id"),
        priority=settings.get("priority") or 0,
        require_registered=require_registered,
        application_version=settings.get("app_version") or application_version,
        queue_partition_key=settings.get("queue_partition_key"),
        attributes=_attributes(settings, parent_workflow_id),
        reject_reused_id=_takes_reuse_policy(parent_workflow_id) and workflow_id is None,
        return_deduplicated=return_deduplicated,
        **timing,
    )


def _takes_reuse_policy(parent_workflow_id: str | None) -> bool:
    """Whether SetWorkflowID asked to reject an id in use (and consumes its policy).

    Raises:
        DBOSException: "reject" for a child started in workflow code.
    """
    policy = next_workflow_id_reuse.get()
    next_workflow_id_reuse.set(None)  # like the id, it names one workflow only
    if policy != "reject":
        return False
    if parent_workflow_id is not None:
        raise DBOSException(
            "workflow_id_reuse_policy='reject' applies to workflows started outside "
            "workflow code: a child's start is checkpointed, so a replay never starts it twice"
        )
    return True


def _check_deduplication(
    settings: EnqueueSettings, status: str, parent_workflow_id: str | None
) -> bool:
    """Whether a taken deduplication id returns its holder's id
    (``SetEnqueueOptions(duplication_policy="return-existing")``), checked as DBOS checks it.

    Raises:
        DBOSException: a deduplication id with a partition key; "return-existing"
            without a deduplication id, for a direct call, or in workflow code.
    """
    if settings.get("queue_partition_key") is not None and settings.get("deduplication_id"):
        raise DBOSException("Deduplication is not supported for partitioned queues")
    if settings.get("duplication_policy") != "return-existing":
        return False
    if status != "ENQUEUED":
        raise DBOSException(_RETURN_EXISTING_NEEDS_A_QUEUE)
    if settings.get("deduplication_id") is None:
        raise DBOSException("duplication_policy 'return-existing' requires a deduplication_id.")
    if parent_workflow_id is not None:
        raise DBOSException(
            "duplication_policy 'return-existing' is not supported for a workflow enqueued "
            "from workflow code: catch DBOSQueueDeduplicatedError there instead"
        )
    return True


def serialized_inputs(
    serializer: Serializer, spec: WorkflowSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """``{"args", "kwargs"}``, and for a method the name of its receiver (its instance
    or class is not serialized: the executing process finds it again by name)."""
    receiver, recorded_args = split_receiver(spec.membership, spec.function, tuple(args))
    if spec.portable or portable_caller() or writes_portable(serializer):
        # DBOS's portable shape (the receiver, by name, beside it).
        inputs = portable_inputs(list(recorded_args), kwargs)
        serializer = PORTABLE
    else:
        inputs = {"args": list(recorded_args), "kwargs": kwargs}
    if receiver is not None:
        inputs["receiver"] = receiver.encode()
    return serializer.dumps(inputs)


def portable_caller() -> bool:
    """As DBOS: a workflow started from a portable workflow's code is portable too."""
    workflow = in_workflow_code()
    return workflow is not None and workflow.portable


def _attributes(settings: EnqueueSettings, parent_workflow_id: str | None) -> str | None:
    """The row's attributes as JSON: the ``SetWorkflowAttributes`` block's (a child
    started in workflow code takes none: attributes are not inherited, as in DBOS), with
    the enqueue options' over them, key by key."""
    ambient = None if parent_workflow_id is not None else workflow_attributes.get()
    given = settings.get("attributes")
    if ambient is None and given is None:
        return None
    return json.dumps({**(ambient or {}), **(given or {})})


class _Timing(TypedDict):
    workflow_timeout_ms: int | None
    workflow_deadline_epoch_ms: int | None
    delay_until_epoch_ms: int | None


def _timing(settings: EnqueueSettings, status: str, admitted_later: bool) -> _Timing:
    """The row's timeout, deadline (fixed now unless a queue admits it later) and delay."""
    timeout_seconds = settings.get("workflow_timeout_seconds", workflow_timeout.get())
    timeout_ms = None if timeout_seconds is None else round(timeout_seconds * 1000)
    now = now_epoch_ms()
    delay = settings.get("delay_seconds")
    if delay is not None and status != "ENQUEUED":
        raise DBOSException("delay_seconds applies to enqueued workflows, not to a direct call")
    return {
        "workflow_timeout_ms": timeout_ms,
        "workflow_deadline_epoch_ms": (
            None if timeout_ms is None or admitted_later else now + timeout_ms
        ),
        "delay_until_epoch_ms": None if delay is None else now + round(delay * 1000),
    }


def _identity(settings: EnqueueSettings, parent_workflow_id: str | None) -> Identity | None:
    """Who starts it: the options' user and roles, or the starting code's identity."""
    if "authenticated_user" in settings or "authenticated_roles" in settings:
        return Identity(
            user=settings.get("authenticated_user"),
            roles=settings.get("authenticated_roles"),
            assumed_role=None,
        )
    return starting_identity(parent_workflow_id)
