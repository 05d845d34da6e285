"""The application version a process runs: configured, or computed as DBOS does."""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import logging

from celery_durable.engine.registry import WorkflowSpec

logger = logging.getLogger("celery_durable.versions")


def library_version() -> str:
    try:
        return importlib.metadata.version("celery-durable")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def compute_app_version(app_name: str, workflows: list[WorkflowSpec]) -> str:
    """An MD5 of the registered workflows' source, in sorted order, then of the
    library's version and the application's name (DBOS 3.4's
    ``compute_app_version``): the same code gives the same version in every process,
    and changing a workflow changes it.

    A step's temporary workflow (``<temp>.<name>``) is not workflow code: its step
    runs once and is never replayed against changed code, so it is left out (a step's
    body may change without changing the version, as in DBOS).

    When a workflow's source cannot be read (defined in a REPL, say), the version is
    ``DEFAULT_VERSION-<app name>``, as DBOS's; configure ``application_version`` then.
    """
    try:
        sources = sorted(
            inspect.getsource(spec.function) for spec in workflows if not spec.temporary
        )
    except (OSError, TypeError):
        logger.warning(
            "Could not read the source of every workflow to compute the application "
            "version; using 'DEFAULT_VERSION-%s'. Set config['application_version'].",
            app_name,
        )
        return f"DEFAULT_VERSION-{app_name}"
    hasher = hashlib.md5(usedforsecurity=False)
    for source in [*sources, library_version(), app_name]:
        hasher.update(source.encode("utf-8"))
    return hasher.hexdigest()


def version_live_ms(recovery_interval_seconds: float) -> int:
    """How recently one of a version's workers must have swept (each sweep records its
    version) for the version to count as running: three sweep intervals."""
    return round(3000 * recovery_interval_seconds)
