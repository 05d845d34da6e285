"""The ``DBOS`` facade's look at one workflow: a handle by id, its recorded steps (a
part of ``DBOS``)."""

from __future__ import annotations

from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.core.records import StepInfo
from celery_durable.service.handles import WorkflowHandle
from celery_durable.service.management import refuse_shard_key


class WorkflowInspection(ConfiguredFacade):
    """``retrieve_workflow`` and ``list_workflow_steps`` on ``DBOS``."""

    @classmethod
    def retrieve_workflow(
        cls, workflow_id: str, existing_workflow: bool = True, *, shard_key: str | None = None
    ) -> WorkflowHandle[Any]:
        """A handle to any workflow by id.

        Raises:
            DBOSNonExistentWorkflowError: ``existing_workflow`` and no such workflow.
        """
        refuse_shard_key(shard_key)
        return cls._service().retrieve(workflow_id, existing_workflow)

    @classmethod
    def list_workflow_steps(
        cls,
        workflow_id: str,
        *,
        load_output: bool = True,
        limit: int | None = None,
        offset: int | None = None,
        shard_key: str | None = None,
    ) -> list[StepInfo]:
        """Every recorded step of a workflow, ordered by ``function_id`` (from 1), or
        the page ``limit`` and ``offset`` give.

        Each is a [StepInfo][celery_durable.StepInfo]: DBOS 3.4's keys
        (``function_id``, ``function_name``, ``output``, ``error`` (the exception; both
        None with ``load_output=False``), ``child_workflow_id``, ``child_shard_key``,
        ``started_at_epoch_ms``, ``completed_at_epoch_ms`` (None while the step waits
        for its next attempt)), then ``attempts``, ``max_attempts``,
        ``retry_due_at_epoch_ms`` and ``attempt_history``: one dict per attempt with
        ``attempt``, ``started_at_epoch_ms``, ``completed_at_epoch_ms`` and ``error``.
        """
        refuse_shard_key(shard_key)
        return cls._service().reading.list_workflow_steps(
            workflow_id, load_output=load_output, limit=limit, offset=offset
        )
