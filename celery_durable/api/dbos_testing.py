"""The ``DBOS`` facade's test support (a part of ``DBOS``): resetting the system
database between tests, as DBOS Transact's documented pytest fixture does."""

from __future__ import annotations

import logging

from celery_durable.api.dbos_migrate import migrate_system_database
from celery_durable.api.facade import ConfiguredFacade
from celery_durable.error import DBOSInitializationError
from celery_durable.service.tools import SCHEMA_NAMES, SYSTEM_SCHEMA, reset_database

logger = logging.getLogger("dbos")


class WorkflowTesting(ConfiguredFacade):
    """``DBOS.reset_system_database`` and ``DBOS.migrate``."""

    @staticmethod
    def migrate(
        system_database_url: str,
        *,
        schema: str = "dbos",
        application_role: str | None = None,
        sharding: bool = False,
    ) -> None:
        """Creates or upgrades the system database from a privileged role (creating the
        database if missing); ``application_role`` is granted the use of its tables.
        ``schema``: ``celery_durable``, or DBOS's default name ``dbos`` for it;
        ``sharding=True`` raises (see ``celery_durable.api.dbos_migrate``)."""
        migrate_system_database(
            system_database_url,
            schema=schema,
            application_role=application_role,
            sharding=sharding,
        )

    @classmethod
    def reset_system_database(
        cls,
        *,
        system_database_url: str | None = None,
        schema: str | None = None,
        truncate: bool = False,
    ) -> None:
        """Destroys the system database (``truncate=True``: empties its tables) — for
        tests, before ``DBOS.launch()``, which creates it again.

        Args:
            system_database_url: Default: the configured one.
            schema: Only ``celery_durable`` (its tables' schema; DBOS's default name
                ``dbos`` stands for it) or None.
        """
        if schema is not None and schema not in SCHEMA_NAMES:
            raise DBOSInitializationError(
                f"celery_durable's tables live in the schema {SYSTEM_SCHEMA!r}, not {schema!r}"
            )
        service = cls._current_service()
        if system_database_url is not None:
            reset_database(system_database_url, truncate=truncate)
        elif service is not None:
            service.reset_system_database(truncate=truncate)
        else:
            logger.warning(
                "reset_system_database has no effect: DBOS is not configured and no "
                "system_database_url was given"
            )
