"""The ``DBOS`` facade's application versions and patches (a part of ``DBOS``).

Names and semantics are DBOS Transact 3.x's; see :mod:`celery_durable.engine.patches`.
"""

from __future__ import annotations

from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.service import workflow_code
from celery_durable.service.handles import WorkflowHandle


class WorkflowVersioning(ConfiguredFacade):
    """``DBOS.patch``, ``DBOS.deprecate_patch`` and ``fork_workflow`` to a version
    (``DBOS.application_version`` is a class property: see ``AmbientProperties``)."""

    @staticmethod
    def patch(patch_name: str) -> bool:
        """In workflow code: True for a workflow that runs the code after the patch
        (it started after the patch was deployed, or had not got this far), False
        for one that started before it and must replay the old code::

            if DBOS.patch("use-new-payment-api"):
                charge_v2(order)
            else:
                charge(order)
        """
        return workflow_code.patch(patch_name)

    @staticmethod
    async def patch_async(patch_name: str) -> bool:
        """``patch`` for ``async def`` workflows (it does not yield to the event loop
        between reading and taking the position, so sibling tasks cannot interleave)."""
        return workflow_code.patch(patch_name)

    @staticmethod
    def deprecate_patch(patch_name: str) -> bool:
        """Replaces ``patch`` once no workflow started before the patch remains: always
        True; it takes the marker's position in workflows that recorded one and writes
        none. Remove it once no workflow with the marker remains."""
        return workflow_code.deprecate_patch(patch_name)

    @staticmethod
    async def deprecate_patch_async(patch_name: str) -> bool:
        """``deprecate_patch`` for ``async def`` workflows."""
        return workflow_code.deprecate_patch(patch_name)

    @classmethod
    def fork_workflow(
        cls, workflow_id: str, start_step: int, *, application_version: str | None = None
    ) -> WorkflowHandle[Any]:
        """Starts a new workflow with the same inputs that replays the operations before
        ``start_step`` and runs the rest again, as DBOS does: operations are numbered
        from 1 (``list_workflow_steps``' ``function_id``), so ``start_step=3`` re-runs
        step 3 onward and ``start_step=1`` re-runs everything. ``SetWorkflowID`` names
        the new workflow. It runs on workers of ``application_version`` (for example, to
        move a workflow of a retired version to the new code); without it, on the first
        worker that claims it."""
        return cls._service().fork(workflow_id, start_step, application_version=application_version)
