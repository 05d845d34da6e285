"""DBOS 3.4's application versions, written once for ``DBOS`` and ``DBOSClient``: the
versions recorded in the system database, and which one is the latest."""

from __future__ import annotations

from celery_durable.core.records import VersionInfo
from celery_durable.error import DBOSException
from celery_durable.integration.runtime import Runtime


class ApplicationVersions:
    """One configuration's application versions (``service.versions``; the statements
    are ``store.management``'s)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def register_version(self) -> None:
        """Records this process's application version (``DBOS.launch``, a worker's start)."""
        process = self.runtime.process
        process.store.management.register_version(process.application_version)

    def list_application_versions(self) -> list[VersionInfo]:
        """Every recorded application version, the latest first."""
        return self.runtime.process.store.management.list_versions()

    def get_latest_application_version(self) -> VersionInfo:
        """The latest application version (the newest timestamp).

        Raises:
            DBOSException: none is recorded yet (as DBOS).
        """
        versions = self.list_application_versions()
        if not versions:
            raise DBOSException("No application versions found")
        return versions[0]

    def set_latest_application_version(
        self, version_name: str, application_name: str | None
    ) -> None:
        """Makes a recorded version the latest (its timestamp becomes now).

        Raises:
            DBOSException: ``application_name`` given (no applications share a system
                database here: omit it).
        """
        if application_name is not None:
            raise DBOSException(
                "application_name: no applications share a celery_durable system "
                "database, so versions have no owner; omit application_name"
            )
        self.runtime.process.store.management.promote_version(version_name)
