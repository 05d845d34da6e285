"""The ``DBOS`` facade's class decorators (a part of ``DBOS``).

Names and semantics are DBOS Transact 3.x's; see
:mod:`celery_durable.service.class_decorators` and :mod:`celery_durable.engine.classes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from celery_durable.api.facade import ConfiguredFacade
from celery_durable.service.class_decorators import declare_class, declare_default_roles

T = TypeVar("T", bound=type)


class WorkflowClasses(ConfiguredFacade):
    """``DBOS.dbos_class`` and ``DBOS.default_required_roles``."""

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[T], T]:
        """Declares a class whose methods are workflows, steps or transactions.

        Instance-method workflows need a ``DBOSConfiguredInstance``: the workflow
        records ``(class_name, config_name)`` and the worker that executes or recovers
        it finds that instance again, so create the instance when the module is
        imported. Class-method workflows record ``class_name``; static methods are
        plain workflows.

        Args:
            class_name: The class's registered name, unique in the application;
                defaults to its ``__qualname__``.
        """
        return declare_class(cls._registry, class_name)

    @classmethod
    def default_required_roles(cls, roles: list[str]) -> Callable[[T], T]:
        """``@DBOS.dbos_class()`` whose workflows and steps require one of ``roles``
        unless they name their own with ``@DBOS.required_roles``."""
        return declare_default_roles(cls._registry, roles)
