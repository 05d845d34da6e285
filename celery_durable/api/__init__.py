"""The public API: the ``DBOS`` facade, ``DBOSClient``, ``Queue`` and the option blocks,
each a thin surface over :mod:`celery_durable.service`.

Users import it from :mod:`celery_durable`.
"""
