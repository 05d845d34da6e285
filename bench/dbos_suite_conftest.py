"""What ``python -m bench dbos_suite`` changes in DBOS Transact's ``tests/conftest.py``.

DBOS's conftest is downloaded with its tests and adapted only where a Celery deployment
must differ, or where one missing piece of API would otherwise fail every test at its
fixture (measuring one gap hundreds of times). Each adaptation is a textual replacement
with its reason; docs/dbos-compatibility.md lists them (``ADAPTATIONS`` is its source).
Each helper feature-detects: once celery_durable has the API, the helper calls it
exactly as DBOS's conftest does.

This module is plain data and text (the runner copies ``HELPERS`` into the conftest);
it imports nothing of DBOS or celery_durable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Adaptation:
    """Replace ``old`` (which must occur in DBOS's conftest) with ``new``, because ``why``."""

    old: str
    new: str
    why: str
    every: bool = False  # replace every occurrence (else exactly one must exist)


ADAPTATIONS = (
    Adaptation(
        old="""    password = quote(os.environ.get("PGPASSWORD", "dbos"), safe="")
    return (
        f"postgresql://postgres:{password}@localhost:5432/dbostestpy",
        (
            sharded_system_url()
            if using_sharding()
            else f"postgresql+psycopg://postgres:{password}@localhost:5432/dbostestpy_dbos_sys"
        ),
    )""",
        new="""    return (
        os.environ["DBOS_SUITE_USER_DATABASE_URL"],
        os.environ["DBOS_SUITE_SYSTEM_DATABASE_URL"],
    )""",
        why="The databases: the suite's own two on the benchmark server "
        "(`celery_durable_bench_dbos_suite` and `..._user`), not DBOS's `dbostestpy` "
        "with password `dbos`.",
    ),
    Adaptation(
        old="        SystemDatabase.reset_system_database(sys_db_url, truncate=True)",
        new="        _celery_durable_reset_system_database(sys_db_url)",
        why="Emptying the system database between tests calls DBOS's internal "
        "`SystemDatabase`; the fixture drops and re-creates the database instead, and "
        "`DBOS.launch()` migrates it. (Leaving the creation to `launch()` fails now and "
        "then: when another connection creates the missing database first, our "
        "`migrate` raises instead of running again.)",
    ),
    Adaptation(
        old="    dbos = DBOS(config=config)\n",
        new="    dbos = _celery_durable_dbos(config)\n",
        why="`DBOS(config=...)` without `celery=` is not available yet: the fixtures pass a "
        "Celery app (Redis broker) whose in-process worker (a thread pool) runs the "
        "workflows, as DBOS's executor runs them in its own process. The worker learns "
        "the workflows and queues that tests define after it started. The helper launches "
        "before the worker first starts (the fixture's own launch then does nothing), so "
        "that the worker's start hook finds the database migrated.",
        every=True,
    ),
    Adaptation(
        old="DBOS.destroy(destroy_registry=True)",
        new="_celery_durable_destroy()",
        why="`DBOS.destroy(destroy_registry=)` is not accepted yet: the fixtures call "
        "`DBOS.destroy()` (tests that call it themselves are not adapted).",
        every=True,
    ),
    Adaptation(
        old="""    client = DBOSClient(
        system_database_url=config["system_database_url"], sharding=using_sharding()
    )""",
        new="""    client = _celery_durable_client(config["system_database_url"])""",
        why="The `client` fixture: our `DBOSClient` needs a broker (it publishes what it "
        "enqueues) and does not take `sharding=` (always False here); the fixture passes "
        "the suite's Celery app.",
    ),
    Adaptation(
        old='        item._nodeid = "\\n" + item.nodeid + "\\n"',
        new="        pass",
        why="Cosmetic in DBOS (blank lines around test names); it garbles the JUnit "
        "report the runner counts results from.",
    ),
)

# Appended to the adapted conftest: the helpers the replacements call.
HELPERS = '''

# -- celery_durable: helpers of the adaptations (bench/dbos_suite_conftest.py) --------

import inspect as _inspect
import threading as _threading

from celery import Celery as _Celery
from celery.contrib.testing.worker import start_worker as _start_worker

_CELERY = _Celery("dbos_suite", broker=os.environ["DBOS_SUITE_BROKER_URL"])
_CELERY.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
)
_WORKER: Any = None
_WORKER_MANAGER: Any = None  # kept: collecting it would stop the worker
_CONSUMED: set = set()
_WORKER_LOCK = _threading.Lock()


def _accepts(function: Any, name: str) -> bool:
    return name in _inspect.signature(function).parameters


def _celery_durable_worker() -> Any:
    """Starts the in-process Celery worker once; it consumes every queue declared."""
    global _WORKER, _WORKER_MANAGER
    with _WORKER_LOCK:
        if _WORKER is not None:
            return _WORKER
        queues = {_CELERY.conf.task_default_queue, *getattr(DBOS, "_queues", {})}
        manager = _start_worker(
            _CELERY,
            pool="threads",
            concurrency=8,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=5,
            queues=sorted(queues),
        )
        _WORKER = manager.__enter__()
        _WORKER_MANAGER = manager
        _CONSUMED.update(queues)
    registry = getattr(DBOS, "_registry", None)
    if registry is not None:
        # Workflows defined after the worker started: the configured DBOS registers
        # their task (it subscribes first); let the worker's consumer know of it.
        def learn(spec: Any) -> None:
            _WORKER.consumer.update_strategies()

        registry.subscribe(learn)
    register_queue = getattr(DBOS, "_register_queue", None)
    if register_queue is not None:
        # Queues declared after the worker started: consume their Celery queue too.
        def register_and_consume(cls: Any, limits: Any) -> None:
            register_queue(limits)
            if limits.name not in _CONSUMED:
                _CONSUMED.add(limits.name)
                _CELERY.control.add_consumer(
                    limits.name, reply=True, timeout=5, destination=[_WORKER.hostname]
                )

        # On the class that defines it: Queue(...) calls it there, not through DBOS.
        owner = next(c for c in DBOS.__mro__ if "_register_queue" in vars(c))
        owner._register_queue = classmethod(register_and_consume)
    return _WORKER


def _celery_durable_dbos(config: Any) -> Any:
    if _accepts(DBOS, "celery"):
        dbos = DBOS(celery=_CELERY, config=config)
    else:
        dbos = DBOS(config=config)
    # Launched before the worker first starts: its start hook connects too, and a
    # launch that finds the database created meanwhile by that hook fails (a race of
    # celery_durable's migrate, reported). The fixture's own launch then does nothing.
    DBOS.launch()
    _celery_durable_worker()
    return dbos


def _celery_durable_destroy() -> None:
    if _accepts(DBOS.destroy, "destroy_registry"):
        DBOS.destroy(destroy_registry=True)
    else:
        DBOS.destroy()


def _celery_durable_client(system_database_url: str) -> Any:
    if _accepts(DBOSClient, "celery"):
        return DBOSClient(system_database_url=system_database_url, celery=_CELERY)
    return DBOSClient(system_database_url=system_database_url, sharding=using_sharding())


def _celery_durable_reset_system_database(system_database_url: str) -> None:
    name = sa.make_url(system_database_url).database
    engine = sa.create_engine(
        sa.make_url(system_database_url).set(drivername="postgresql+psycopg", database="postgres")
    )
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
'''


def adapt(conftest: str) -> str:
    """DBOS's conftest with every adaptation applied; raises if one no longer applies
    (DBOS changed its conftest: the list must be looked at again)."""
    for adaptation in ADAPTATIONS:
        found = conftest.count(adaptation.old)
        if found == 0 or (found > 1 and not adaptation.every):
            raise ValueError(f"adaptation found {found} times in conftest.py: {adaptation.old!r}")
        conftest = conftest.replace(adaptation.old, adaptation.new)
    return conftest + HELPERS
