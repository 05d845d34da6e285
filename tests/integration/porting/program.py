"""A DBOS Transact program ported by changing its import only: ``DBOS(config=...)``
without ``celery=``. Its broker is ``CELERY_BROKER_URL``, its database
``PORTING_DATABASE_URL`` (the tests set both); ``celery -A
tests.integration.porting.program worker`` serves it as any Celery app."""

from __future__ import annotations

import os

from celery_durable import DBOS, DBOSConfig

config: DBOSConfig = {
    "name": "porting-program",
    "system_database_url": os.environ["PORTING_DATABASE_URL"],
    "in_process_worker": os.environ.get("PORTING_IN_PROCESS_WORKER", "1") == "1",
}
DBOS(config=config)


@DBOS.step()
def add_one(value: int) -> int:
    return value + 1


@DBOS.workflow()
def increment(value: int) -> int:
    return add_one(value)


if os.environ.get("PORTING_LAUNCH_ON_IMPORT") == "1":
    DBOS.launch()
