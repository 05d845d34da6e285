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
    "use_listen_notify": os.environ.get("PORTING_USE_LISTEN_NOTIFY", "1") == "1",
}
DBOS(config=config)


@DBOS.step()
def add_one(value: int) -> int:
    return value + 1


@DBOS.workflow()
def increment(value: int) -> int:
    return add_one(value)


@DBOS.workflow()
def count_to(last: int) -> None:
    for value in range(1, last + 1):
        DBOS.write_stream("count", value)
        DBOS.sleep(0.2)
    DBOS.close_stream("count")


if os.environ.get("PORTING_LAUNCH_ON_IMPORT") == "1":
    DBOS.launch()
