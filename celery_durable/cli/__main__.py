"""``python -m celery_durable.cli``: the ``celery-durable`` command."""

from celery_durable.cli import main

main()
