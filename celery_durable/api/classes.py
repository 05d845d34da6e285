"""``DBOSConfiguredInstance``: an instance a workflow method can be recovered with."""

from __future__ import annotations

from celery_durable.api.dbos import DBOS


class DBOSConfiguredInstance:
    """Base class of a ``@DBOS.dbos_class`` class whose workflows are instance methods.

    A workflow of ``instance.method`` records the instance's ``config_name`` (with its
    class's registered name). A worker that executes or recovers the workflow calls the
    method on the instance registered under that name in its own process, so create
    every instance when the module is imported (not inside a request or a workflow).

    Attributes:
        config_name: The instance's name, unique among its class's instances.

    Raises:
        DBOSException: another instance of the class already has ``config_name``.
    """

    def __init__(self, config_name: str) -> None:
        self.config_name = config_name
        DBOS._registry.classes.register_instance(self, config_name)
