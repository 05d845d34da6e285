"""The ``DBOS`` facade's application versions and patches (a part of ``DBOS``).

Names and semantics are DBOS Transact 3.x's; see :mod:`celery_durable.engine.patches`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.core.records import VersionInfo
from celery_durable.service import workflow_code
from celery_durable.service.handles import WorkflowHandle, WorkflowHandleAsync
from celery_durable.service.management import refuse_partition_key, refuse_shard_key


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
        """``patch`` for sequential ``async def`` workflow code: called concurrently
        with the workflow's other operations (sibling tasks), it raises
        ``DBOSPatchNondeterminismError``, as DBOS's does."""
        return await workflow_code.patch_async(patch_name)

    @staticmethod
    def deprecate_patch(patch_name: str) -> bool:
        """Replaces ``patch`` once no workflow started before the patch remains: always
        True; it takes the marker's position in workflows that recorded one and writes
        none. Remove it once no workflow with the marker remains."""
        return workflow_code.deprecate_patch(patch_name)

    @staticmethod
    async def deprecate_patch_async(patch_name: str) -> bool:
        """``deprecate_patch`` for sequential ``async def`` workflow code (as
        ``patch_async``)."""
        return await workflow_code.deprecate_patch_async(patch_name)

    @classmethod
    def fork_workflow(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandle[Any]:
        """Starts a new workflow with the same inputs that replays the operations before
        ``start_step`` and runs the rest again, as DBOS does: operations are numbered
        from 1 (``list_workflow_steps``' ``function_id``), so ``start_step=3`` re-runs
        step 3 onward and ``start_step=1`` re-runs everything. ``SetWorkflowID`` names
        the new workflow. It runs on workers of ``application_version`` (for example, to
        move a workflow of a retired version to the new code; without it, on the first
        worker that claims it), on ``queue_name`` (default: the original's), with a
        timeout of ``timeout_seconds`` (default: none). ``replacement_children`` maps
        children of the copied operations to other workflows (old id to new id), whose
        outcomes the fork then awaits instead. Its attributes are the original's.
        ``queue_partition_key`` and ``shard_key`` are refused (no partitions, no
        sharding)."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return cls._service().fork(
            workflow_id,
            start_step,
            application_version=application_version,
            queue_name=queue_name,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )

    @classmethod
    async def fork_workflow_async(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        shard_key: str | None = None,
    ) -> WorkflowHandleAsync[Any]:
        """``fork_workflow`` for async callers."""
        refuse_shard_key(shard_key)
        refuse_partition_key(queue_partition_key)
        return await cls._service().fork_async(
            workflow_id,
            start_step,
            application_version=application_version,
            queue_name=queue_name,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )

    @classmethod
    def list_application_versions(cls) -> list[VersionInfo]:
        """Every application version recorded (by ``DBOS.launch`` and each worker's
        start), the latest first, as DBOS 3.4's ``VersionInfo`` dicts."""
        return cls._service().versions.list_application_versions()

    @classmethod
    def get_latest_application_version(cls) -> VersionInfo:
        """The latest application version (the newest timestamp).

        Raises:
            DBOSException: none is recorded yet."""
        return cls._service().versions.get_latest_application_version()

    @classmethod
    def set_latest_application_version(
        cls, version_name: str, *, application_name: str | None = None
    ) -> None:
        """Makes ``version_name`` the latest version (its timestamp becomes now).
        Unlike DBOS, which version is latest decides nothing here: a workflow without
        a version runs on the first worker that claims it, whatever its version (see
        Safe deploys). ``application_name`` is refused (versions have no owner)."""
        cls._service().versions.set_latest_application_version(version_name, application_name)

    @classmethod
    async def list_application_versions_async(cls) -> list[VersionInfo]:
        """``list_application_versions`` for async callers."""
        return await asyncio.to_thread(cls._service().versions.list_application_versions)

    @classmethod
    async def get_latest_application_version_async(cls) -> VersionInfo:
        """``get_latest_application_version`` for async callers."""
        return await asyncio.to_thread(cls._service().versions.get_latest_application_version)

    @classmethod
    async def set_latest_application_version_async(
        cls, version_name: str, *, application_name: str | None = None
    ) -> None:
        """``set_latest_application_version`` for async callers."""
        await asyncio.to_thread(
            cls._service().versions.set_latest_application_version, version_name, application_name
        )
