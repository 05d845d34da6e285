"""Context managers that name and shape the next workflows started in their block."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any, Literal

from celery_durable.error import DBOSException
from celery_durable.service.context import (
    Identity,
    authentication,
    enqueue_options,
    ignore_propagated_deadline,
    next_workflow_id,
    next_workflow_id_reuse,
    workflow_attributes,
    workflow_timeout,
)

MAX_PRIORITY = 2**31 - 1
# DBOS 3.4's names for the two policies.
WorkflowIDReusePolicy = Literal["return-existing", "reject"]
DuplicationPolicy = Literal["reject", "return-existing"]


class SetWorkflowID:
    """Names the next workflow started in this block.

    ``with SetWorkflowID("order-1"): DBOS.start_workflow(...)`` is idempotent: the same
    id never runs the workflow twice; a second start returns the first one's handle.

    Args:
        wfid: The id (DBOS's parameter name).
        workflow_id_reuse_policy: ``"return-existing"`` (None: the default, above) or
            ``"reject"``: an id already in use raises ``DBOSWorkflowIDInUseError``
            (for workflows started outside workflow code), as in DBOS 3.4.
    """

    def __init__(
        self, wfid: str, *, workflow_id_reuse_policy: WorkflowIDReusePolicy | None = None
    ) -> None:
        check_workflow_id(wfid)
        if workflow_id_reuse_policy not in (None, "return-existing", "reject"):
            raise DBOSException(
                f"Invalid workflow_id_reuse_policy {workflow_id_reuse_policy}. "
                "Must be either 'return-existing' or 'reject'."
            )
        self.wfid = self.workflow_id = wfid
        self.workflow_id_reuse_policy = workflow_id_reuse_policy
        self._tokens: Any = None

    def __enter__(self) -> SetWorkflowID:
        self._tokens = (
            next_workflow_id.set(self.wfid),
            next_workflow_id_reuse.set(self.workflow_id_reuse_policy),
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        id_token, reuse_token = self._tokens
        next_workflow_id_reuse.reset(reuse_token)
        next_workflow_id.reset(id_token)


@contextlib.contextmanager
def SetEnqueueOptions(
    *,
    deduplication_id: str | None = None,
    priority: int | None = None,
    delay_seconds: float | None = None,
    app_version: str | None = None,
    queue_partition_key: str | None = None,
    duplication_policy: DuplicationPolicy | None = None,
) -> Iterator[None]:
    """Enqueue options for workflows started in this block (as in DBOS).

    Args:
        deduplication_id: While a workflow of the queue with this id is DELAYED,
            ENQUEUED or PENDING, enqueuing another raises ``DBOSQueueDeduplicatedError``.
        priority: 0 to 2**31-1; lower runs first (on every queue, as in DBOS 3.x).
        delay_seconds: The workflow is DELAYED that long before it is ENQUEUED (it waits
            in PostgreSQL, not on the broker; ``cancel_workflow`` works meanwhile).
        app_version: Only workers of this application version run it.
        queue_partition_key: The partition of a partitioned queue whose per-partition
            limits apply to it (not with ``deduplication_id``, as in DBOS).
        duplication_policy: ``"reject"`` (None: the default, above) or
            ``"return-existing"``: a taken ``deduplication_id`` returns the holder's
            handle instead (needs ``deduplication_id``; not in workflow code).
    """
    _check_duplication_policy(duplication_policy)
    if deduplication_id is not None and (
        not isinstance(deduplication_id, str) or not deduplication_id
    ):
        raise DBOSException(
            f"deduplication_id must be a non-empty string, not {deduplication_id!r}"
        )
    if priority is not None and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= MAX_PRIORITY
    ):
        raise DBOSException(
            f"Invalid priority {priority!r}. Priority must be between 0~{MAX_PRIORITY}."
        )
    if delay_seconds is not None and not _non_negative(delay_seconds):
        raise DBOSException(f"delay_seconds must be a number >= 0, not {delay_seconds!r}")
    check_version(app_version)
    _check_partition_key(queue_partition_key)
    token = enqueue_options.set(
        {
            "deduplication_id": deduplication_id,
            "priority": priority,
            "delay_seconds": delay_seconds,
            "app_version": app_version,
            "queue_partition_key": queue_partition_key,
            "duplication_policy": duplication_policy,
        }
    )
    try:
        yield
    finally:
        enqueue_options.reset(token)


def _check_duplication_policy(duplication_policy: object) -> None:
    if duplication_policy not in (None, "reject", "return-existing"):
        raise DBOSException(
            f"Invalid duplication_policy {duplication_policy}. "
            "Must be either 'reject' or 'return-existing'."
        )


def _check_partition_key(queue_partition_key: object) -> None:
    if queue_partition_key is not None and (
        not isinstance(queue_partition_key, str) or not queue_partition_key
    ):
        raise DBOSException(
            f"queue_partition_key must be a non-empty string, not {queue_partition_key!r}"
        )


def check_attributes(attributes: object) -> None:
    """Workflow attributes are None or a JSON-serializable dict (DBOS's checks and texts).

    Raises:
        DBOSException: anything else.
    """
    if attributes is not None and not isinstance(attributes, dict):
        raise DBOSException(f"Invalid workflow attributes {attributes}. Attributes must be a dict.")
    if attributes is not None:
        try:
            json.dumps(attributes)
        except (TypeError, ValueError) as error:
            raise DBOSException(
                f"Invalid workflow attributes {attributes}. Attributes must be JSON-serializable."
            ) from error


class SetWorkflowAttributes:
    """Attributes (a JSON object) recorded with each workflow started, enqueued or
    called in this block, as DBOS 3.4's: ``WorkflowStatus.attributes``, found by
    ``list_workflows(attributes=...)``, changed by ``update_workflow_attributes``.
    Children a workflow starts do not inherit them.

    ``with SetWorkflowAttributes({"customer": "acme"}): DBOS.start_workflow(...)``

    Raises:
        DBOSException: attributes that are not a dict, or not JSON-serializable.
    """

    def __init__(self, attributes: dict[str, Any] | None) -> None:
        check_attributes(attributes)
        self.attributes = attributes
        self._token: Any = None

    def __enter__(self) -> SetWorkflowAttributes:
        self._token = workflow_attributes.set(self.attributes)
        return self

    def __exit__(self, *exc_info: object) -> None:
        workflow_attributes.reset(self._token)


class SetWorkflowTimeout:
    """Gives workflows started in this block a timeout, as DBOS does.

    ``with SetWorkflowTimeout(30): DBOS.start_workflow(...)`` (or ``Queue.enqueue``, or a
    direct call): once the deadline passes the workflow becomes CANCELLED within about a
    second, whatever it is doing (a running step finishes first); its children share its
    deadline. The deadline is fixed at start, or when a queue first admits the workflow.
    In workflow code, a child started in the block has the block's timeout instead of
    its parent's deadline (``SetWorkflowTimeout(None)``: none), as in DBOS.

    Args:
        workflow_timeout_sec: Seconds (> 0), or None for no timeout.
    """

    def __init__(self, workflow_timeout_sec: float | None) -> None:
        if workflow_timeout_sec is not None and (
            not _non_negative(workflow_timeout_sec) or not workflow_timeout_sec > 0
        ):
            raise DBOSException(
                f"Invalid workflow timeout {workflow_timeout_sec!r}. Timeouts must be positive."
            )
        self.workflow_timeout_sec = workflow_timeout_sec
        self._token: Any = None

    def __enter__(self) -> SetWorkflowTimeout:
        self._token = (
            workflow_timeout.set(self.workflow_timeout_sec),
            ignore_propagated_deadline.set(True),
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        timeout_token, deadline_token = self._token
        ignore_propagated_deadline.reset(deadline_token)
        workflow_timeout.reset(timeout_token)


class DBOSContextSetAuth:
    """Acts as an authenticated user in this block, as DBOS does.

    Workflows started, enqueued or called in the block record ``user`` and ``roles``
    (``WorkflowStatus.authenticated_user``, ``authenticated_roles``); their code, their
    steps and their children (which inherit them) read them as
    ``DBOS.authenticated_user`` and ``DBOS.authenticated_roles``, after a recovery too.
    ``@DBOS.required_roles`` checks ``roles``.

    Args:
        user: The user's name, or None.
        roles: The roles granted to the user (a list of strings), or None.

    Raises:
        DBOSException: ``user`` is not a string or ``roles`` not a list of strings.
    """

    def __init__(self, user: str | None, roles: list[str] | None) -> None:
        self.user, self.roles = validate_identity(user, roles)
        self._token: Any = None

    def __enter__(self) -> DBOSContextSetAuth:
        self._token = authentication.set(
            Identity(user=self.user, roles=self.roles, assumed_role=None)
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        authentication.reset(self._token)


def validate_identity(user: object, roles: object) -> tuple[str | None, list[str] | None]:
    """An authenticated user and roles, checked (DBOSContextSetAuth, DBOSClient).

    Raises:
        DBOSException: ``user`` is not a string or None, or ``roles`` not a list of
            strings or None.
    """
    if user is not None and not isinstance(user, str):
        raise DBOSException(f"The authenticated user must be a string or None, not {user!r}")
    if roles is not None and (
        not isinstance(roles, list) or not all(isinstance(role, str) for role in roles)
    ):
        raise DBOSException(
            f"The authenticated roles must be a list of strings or None, not {roles!r}"
        )
    return user, None if roles is None else list(roles)


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_version(app_version: object) -> None:
    """An application version is a non-empty string (or None: not given)."""
    if app_version is not None and (not isinstance(app_version, str) or not app_version):
        raise DBOSException(f"app_version must be a non-empty string, not {app_version!r}")


def check_workflow_id(workflow_id: object) -> None:
    """A workflow id is a string with something besides whitespace (DBOS 3.4's check and
    text: an empty id is refused, never written).

    Raises:
        DBOSException: an empty, blank or non-string id.
    """
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise DBOSException(
            f"Invalid workflow ID {workflow_id!r}: workflow IDs must be non-empty and "
            "cannot be only whitespace."
        )
