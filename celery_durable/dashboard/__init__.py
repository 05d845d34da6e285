"""The web dashboard (``celery-durable dashboard``; the optional extra ``dashboard``):
workflows, one workflow's timeline, queues, actions, a JSON API and ``/metrics``."""

from celery_durable.dashboard.app import check_schema, create_app
from celery_durable.dashboard.settings import DashboardSettings

__all__ = ["DashboardSettings", "check_schema", "create_app"]
