"""The durable engine: claim, replay, steps, transactions and durable waits.

It knows nothing of Celery: it raises ``RescheduleWorkflow`` to ask for a later run,
and reaches the layer above only through the ``Launcher`` protocol it defines.
"""
