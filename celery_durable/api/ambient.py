"""What ``DBOS`` reads from the running code's context: class-level properties and the
logger whose records carry the workflow id and step name."""

from __future__ import annotations

import logging

from celery_durable.error import DBOSException
from celery_durable.service.context import (
    DBOSSqlSession,
    StepStatus,
    current_assumed_role,
    current_roles,
    current_session,
    current_step,
    current_user,
    current_workflow,
)


class _ContextFilter(logging.Filter):
    """Adds ``workflow_id`` and ``step_name`` to every record of ``DBOS.logger``."""

    def filter(self, record: logging.LogRecord) -> bool:
        workflow = current_workflow.get()
        step = current_step.get()
        record.workflow_id = workflow.workflow_id if workflow else None
        record.step_name = step.name if step else None
        return True


def make_logger() -> logging.Logger:
    logger = logging.getLogger("dbos")
    logger.addFilter(_ContextFilter())
    return logger


class AmbientProperties(type):
    """Class-level properties: ``DBOS.workflow_id`` and friends, read from context."""

    @property
    def workflow_id(cls) -> str | None:
        """The running workflow's id; None outside a workflow."""
        workflow = current_workflow.get()
        return workflow.workflow_id if workflow else None

    @property
    def application_version(cls) -> str:
        """The application version of this process's code: configured, or computed
        from its registered workflows' source (as DBOS's)."""
        version: str = getattr(cls, "_service")().application_version  # noqa: B009
        return version

    @property
    def shard_key(cls) -> str | None:
        """The running workflow's shard key: always None (no sharding here)."""
        return None

    @property
    def step_id(cls) -> int | None:
        """The running step's id; None outside a step."""
        step = current_step.get()
        return step.step_id if step else None

    @property
    def authenticated_user(cls) -> str | None:
        """The authenticated user: the ``DBOSContextSetAuth`` block's, else the one
        recorded on the running workflow (its steps and children see it too)."""
        return current_user()

    @property
    def authenticated_roles(cls) -> list[str] | None:
        """The roles granted to the authenticated user (as ``authenticated_user``)."""
        return current_roles()

    @property
    def assumed_role(cls) -> str | None:
        """The role the running code assumed: the one a ``@DBOS.required_roles`` check
        chose, else the one recorded on the running workflow."""
        return current_assumed_role()

    @property
    def sql_session(cls) -> DBOSSqlSession:
        """The running ``@DBOS.transaction``'s SQLAlchemy ``Session``.

        Raises:
            DBOSException: outside a transaction.
        """
        session = current_session.get()
        if session is None:
            raise DBOSException("DBOS.sql_session is only available inside a @DBOS.transaction")
        return session

    @property
    def step_status(cls) -> StepStatus | None:
        """The running step's id, 0-based attempt and attempt budget; None outside."""
        step = current_step.get()
        if step is None:
            return None
        attempt = None if step.attempt is None else step.attempt - 1
        return StepStatus(
            step_id=step.step_id, current_attempt=attempt, max_attempts=step.max_attempts
        )
