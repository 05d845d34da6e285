"""``DBOSClient``'s application-version calls, as ``DBOS``'s (DBOS 3.4's names)."""

from __future__ import annotations

import asyncio

from celery_durable.core.records import VersionInfo
from celery_durable.service import WorkflowService


class ClientVersions:
    """``list_application_versions``, ``get_latest_application_version`` and
    ``set_latest_application_version`` (and their ``_async`` twins) on ``DBOSClient``."""

    _service: WorkflowService

    def list_application_versions(self) -> list[VersionInfo]:
        """As ``DBOS.list_application_versions``."""
        return self._service.versions.list_application_versions()

    def get_latest_application_version(self) -> VersionInfo:
        """As ``DBOS.get_latest_application_version``."""
        return self._service.versions.get_latest_application_version()

    def set_latest_application_version(
        self, version_name: str, *, application_name: str | None = None
    ) -> None:
        """As ``DBOS.set_latest_application_version``."""
        self._service.versions.set_latest_application_version(version_name, application_name)

    async def list_application_versions_async(self) -> list[VersionInfo]:
        """``list_application_versions`` for async callers."""
        return await asyncio.to_thread(self._service.versions.list_application_versions)

    async def get_latest_application_version_async(self) -> VersionInfo:
        """``get_latest_application_version`` for async callers."""
        return await asyncio.to_thread(self._service.versions.get_latest_application_version)

    async def set_latest_application_version_async(
        self, version_name: str, *, application_name: str | None = None
    ) -> None:
        """``set_latest_application_version`` for async callers."""
        await asyncio.to_thread(
            self._service.versions.set_latest_application_version, version_name, application_name
        )
