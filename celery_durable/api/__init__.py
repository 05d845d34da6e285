"""The public API: the ``DBOS`` facade, ``DBOSClient``, ``Queue``, handles, inspection.

Users import it from :mod:`celery_durable`.
"""
