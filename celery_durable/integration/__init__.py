"""The Celery integration: workflow tasks, publishing, recovery, worker hooks, runtime."""
