"""The service layer: the one seam between the public surface (``api/``, the dashboard,
the CLI) and the machinery (``integration``, ``engine``, ``store``).

``DBOS`` and ``DBOSClient`` each hold a :class:`WorkflowService` and delegate every
operation they share to it, so the operation (and its ``_async`` twin) is written once
here and each facade is a thin, typed surface. The layers above import nothing of the
machinery directly (pyproject's import contracts): what they need of it — handles, the
running code's context, the read-side overviews — they find in this package.
"""

from celery_durable.service.workflows import WorkflowService

__all__ = ["WorkflowService"]
