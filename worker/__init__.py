"""The deployable side of celery_durable: ``celery -A worker.app worker`` and its examples.

Importing this package does nothing; ``worker.app`` builds the app from the environment.
"""
