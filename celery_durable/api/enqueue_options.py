"""DBOS 3.4's ``EnqueueOptions``: enqueueing a workflow by name, from a client
(``DBOSClient.enqueue``) or from an application (``DBOS.enqueue_workflow_with_options``).

Every DBOS field is either honoured or refused with an error saying what to use
instead; ``max_recovery_attempts`` and ``allow_unregistered`` are ours.
"""

from __future__ import annotations

from typing import Any, Literal, NoReturn, NotRequired, TypedDict

from celery_durable.api.options import (
    check_attributes,
    check_version,
    check_workflow_id,
    validate_identity,
)
from celery_durable.error import DBOSException
from celery_durable.service import trace_context
from celery_durable.service.queues import EnqueueRequest
from celery_durable.service.types import (
    DEFAULT_MAX_RECOVERY_ATTEMPTS,
    EnqueueSettings,
    WorkflowSpec,
)
from celery_durable.service.validation import workflow_options

MAX_PRIORITY = 2**31 - 1
# The attribute that holds ``otel_context``'s trace context (DBOS 3.4's name).
OTEL_CARRIER_ATTRIBUTE = "dbos.otelContext"


class EnqueueOptions(TypedDict):
    """Options of ``DBOSClient.enqueue`` and ``DBOS.enqueue_workflow_with_options``.

    Keys (DBOS 3.4's, unless marked ours):
        workflow_name: The workflow's registered name (its Celery task name).
        queue_name: The queue (default: Celery's routing for the name).
        workflow_id: Makes the enqueue idempotent (default: a new UUID).
        workflow_id_reuse_policy: On an id already in use: ``"return-existing"``
            (default: its handle) or ``"reject"`` (``DBOSWorkflowIDInUseError``... as
            ``DBOSException``).
        app_version: Only workers of this application version run it.
        workflow_timeout: Seconds; CANCELLED once the deadline (fixed when its queue
            first admits it) passes.
        delay_seconds: DELAYED that long before it is ENQUEUED.
        deduplication_id: At most one DELAYED, ENQUEUED or PENDING workflow of the queue
            has it.
        duplication_policy: On a taken deduplication id: ``"reject"`` (default,
            ``DBOSQueueDeduplicatedError``) or ``"return-existing"`` (its handle).
        priority: Lower runs first (0 to 2**31-1), on every queue.
        queue_partition_key: The partition of a partitioned queue.
        authenticated_user, authenticated_roles: Who it runs as.
        attributes: A JSON object recorded with the workflow
            (``WorkflowStatus.attributes``), over a ``SetWorkflowAttributes`` block's.
        otel_context: An OpenTelemetry ``Context`` whose trace the workflow continues:
            its W3C trace context is recorded in the attribute ``dbos.otelContext``
            (nothing when it has no valid span) and carried by the workflow's Celery
            message when this process publishes it.
        max_recovery_attempts: (ours) Used until a worker's code declares its own.
        allow_unregistered: (ours) Enqueue a name no worker has registered yet.

    ``serialization_type``: ``WorkflowSerializationFormat.PORTABLE`` writes the
    inputs in DBOS's portable JSON (the workflow then finishes portable too).

    ``attributes``: a JSON object recorded with the workflow (as
    ``SetWorkflowAttributes``; merged over a ``SetWorkflowAttributes`` block's, key by
    key, for ``DBOS.enqueue_workflow_with_options``).

    Refused with an error naming the alternative: ``class_name`` and
    ``instance_name``, ``application_name``, ``shard_key``.
    """

    workflow_name: str
    queue_name: NotRequired[str]
    workflow_id: NotRequired[str]
    workflow_id_reuse_policy: NotRequired[Literal["return-existing", "reject"]]
    app_version: NotRequired[str]
    workflow_timeout: NotRequired[float]
    delay_seconds: NotRequired[float]
    deduplication_id: NotRequired[str]
    duplication_policy: NotRequired[Literal["reject", "return-existing"]]
    priority: NotRequired[int]
    queue_partition_key: NotRequired[str]
    authenticated_user: NotRequired[str]
    authenticated_roles: NotRequired[list[str]]
    serialization_type: NotRequired[Any]
    class_name: NotRequired[str]
    instance_name: NotRequired[str]
    attributes: NotRequired[dict[str, Any]]
    application_name: NotRequired[str | None]
    otel_context: NotRequired[Any]
    shard_key: NotRequired[str]
    max_recovery_attempts: NotRequired[int]
    allow_unregistered: NotRequired[bool]


# DBOS fields this deployment cannot honour, and what to use instead.
_REFUSED = {
    "class_name": "enqueue a workflow declared as a function, by its name",
    "instance_name": "enqueue a workflow declared as a function, by its name",
    "application_name": "one system database serves one Celery app; omit it",
    "shard_key": "the system database is not sharded; omit it",
}


def enqueue_request(options: EnqueueOptions, *, from_application: bool = False) -> EnqueueRequest:
    """The checked request the options describe.

    ``from_application`` (``DBOS.enqueue_workflow_with_options``): as in DBOS, the name
    is not checked against the registered workflows (it may be implemented by another
    process), and the caller's ``SetEnqueueOptions`` fill the options it leaves unset.

    Raises:
        DBOSException: a missing workflow name, an invalid value, or a field this
            deployment does not support (naming what to use instead).
    """
    for field, instead in _REFUSED.items():
        if options.get(field) is not None:
            raise DBOSException(f"EnqueueOptions {field!r} is not supported: {instead}")
    if options.get("workflow_id") is not None:
        check_workflow_id(options["workflow_id"])
    reuse = options.get("workflow_id_reuse_policy", "return-existing")
    if reuse not in ("return-existing", "reject"):
        raise DBOSException(
            f"Invalid workflow_id_reuse_policy {reuse!r}. Must be 'return-existing' or 'reject'."
        )
    duplication = options.get("duplication_policy", "reject")
    if duplication not in ("reject", "return-existing"):
        raise DBOSException(
            f"Invalid duplication_policy {duplication}. "
            "Must be either 'reject' or 'return-existing'."
        )
    if duplication == "return-existing" and options.get("deduplication_id") is None:
        raise DBOSException("duplication_policy 'return-existing' requires a deduplication_id.")
    return EnqueueRequest(
        spec=_named_spec(options),
        queue_name=options.get("queue_name"),
        workflow_id=options.get("workflow_id"),
        settings=_settings(options),
        require_registered=not (from_application or options.get("allow_unregistered", False)),
        with_ambient_options=from_application,
        otel_context=options.get("otel_context"),
        reject_reused_id=reuse == "reject",
        return_deduplicated=duplication == "return-existing",
    )


def _settings(options: EnqueueOptions) -> EnqueueSettings:
    """The row's options, validated as ``SetEnqueueOptions`` and ``SetWorkflowTimeout``
    validate theirs."""
    priority = options.get("priority")
    if priority is not None and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= MAX_PRIORITY
    ):
        raise DBOSException(
            f"Invalid priority {priority}. Priority must be between 0~{MAX_PRIORITY}."
        )
    settings = EnqueueSettings(
        deduplication_id=options.get("deduplication_id"),
        priority=priority,
        queue_partition_key=options.get("queue_partition_key"),
    )
    delay = options.get("delay_seconds")
    if delay is not None:
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise DBOSException(f"delay_seconds must be a number >= 0, not {delay!r}")
        settings["delay_seconds"] = delay
    if "workflow_timeout" in options:
        timeout = options["workflow_timeout"]
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise DBOSException(f"Invalid workflow timeout {timeout!r}. Timeouts must be positive.")
        settings["workflow_timeout_seconds"] = timeout
    if "authenticated_user" in options or "authenticated_roles" in options:
        user, roles = validate_identity(
            options.get("authenticated_user"), options.get("authenticated_roles")
        )
        settings["authenticated_user"] = user
        settings["authenticated_roles"] = roles
    check_version(options.get("app_version"))
    settings["app_version"] = options.get("app_version")
    settings["attributes"] = _attributes(options)
    return settings


def _attributes(options: EnqueueOptions) -> dict[str, Any] | None:
    """The options' attributes, with ``otel_context``'s trace context under
    ``dbos.otelContext`` (it wins over one written by hand), as DBOS 3.4 records them."""
    attributes = options.get("attributes")
    check_attributes(attributes)
    context = options.get("otel_context")
    carrier = None if context is None else trace_context.trace_carrier(context)
    if carrier is None:
        return attributes
    return {**(attributes or {}), OTEL_CARRIER_ATTRIBUTE: carrier}


def _code_elsewhere(*args: Any, **kwargs: Any) -> NoReturn:
    raise DBOSException("A workflow enqueued by name runs on the workers that have its code")


def _named_spec(options: EnqueueOptions) -> WorkflowSpec:
    """The workflow the options name; its code runs only on the workers."""
    name = options.get("workflow_name")
    if not isinstance(name, str) or not name:
        raise DBOSException('enqueue options need "workflow_name" (a non-empty string)')
    return WorkflowSpec(
        name=name,
        function=_code_elsewhere,
        is_async=False,
        max_recovery_attempts=options.get("max_recovery_attempts", DEFAULT_MAX_RECOVERY_ATTEMPTS),
        portable=workflow_options(options.get("serialization_type"), None),
    )
