"""A workflow message no worker here can run: one line, not Celery's 20.

Celery's consumer logs a message for an unregistered task name as a block of about 20
lines (the body, the headers, a traceback). A workflow message stays ENQUEUED in
PostgreSQL, and the recovery sweep publishes it again after each grace period until a
worker that defines it runs it, so the block would come back every sweep. For messages
that celery_durable published (``publishing.WORKFLOW_HEADER``), a filter on the
consumer's logger turns the block into one line with the workflow's id and name.
``celery-durable workflows get`` and the dashboard say the same (``waiting for``).
"""

from __future__ import annotations

import logging
import threading

from celery_durable.integration.publishing import WORKFLOW_HEADER

CONSUMER_LOGGER = "celery.worker.consumer.consumer"

ONE_LINE = (
    "Workflow %s (%s): this worker has no workflow %r, so Celery refused its message as "
    "an unregistered task; it stays ENQUEUED and the recovery sweep publishes it again "
    "(deploy a worker that defines it, or cancel it)"
)


class UnregisteredWorkflowFilter(logging.Filter):
    """Rewrites Celery's unregistered-task block of a workflow message to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(
            "Received unregistered task of type"
        ):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        headers = args[2] if len(args) > 2 and isinstance(args[2], dict) else {}
        name = headers.get(WORKFLOW_HEADER)
        if not name:
            return True
        record.msg = ONE_LINE
        record.args = (headers.get("id"), name, name)
        record.exc_info = None
        record.exc_text = None
        return True


_lock = threading.Lock()
_installed = False


def install() -> None:
    """Adds the filter to Celery's consumer logger (once per process)."""
    global _installed
    with _lock:
        if not _installed:
            logging.getLogger(CONSUMER_LOGGER).addFilter(UnregisteredWorkflowFilter())
            _installed = True
