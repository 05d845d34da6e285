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
        old="""    client = DBOSClient(
        system_database_url=config["system_database_url"], sharding=using_sharding()
    )""",
        new="""    client = _celery_durable_client(config["system_database_url"])""",
        why="The `client` fixture: our `DBOSClient` does not take `sharding=` (always "
        "False here); the helper passes it once it does.",
    ),
    Adaptation(
        old='        item._nodeid = "\\n" + item.nodeid + "\\n"',
        new="        pass",
        why="Cosmetic in DBOS (blank lines around test names); it garbles the JUnit "
        "report the runner counts results from.",
    ),
)

# Appended to the adapted conftest: the helpers the replacements call.
HELPERS = """

# -- celery_durable: helpers of the adaptations (bench/dbos_suite_conftest.py) --------

import inspect as _inspect


def _celery_durable_client(system_database_url: str) -> Any:
    if "sharding" in _inspect.signature(DBOSClient).parameters:
        return DBOSClient(system_database_url=system_database_url, sharding=using_sharding())
    return DBOSClient(system_database_url=system_database_url)


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
"""


def adapt(conftest: str) -> str:
    """DBOS's conftest with every adaptation applied; raises if one no longer applies
    (DBOS changed its conftest: the list must be looked at again)."""
    for adaptation in ADAPTATIONS:
        found = conftest.count(adaptation.old)
        if found == 0 or (found > 1 and not adaptation.every):
            raise ValueError(f"adaptation found {found} times in conftest.py: {adaptation.old!r}")
        conftest = conftest.replace(adaptation.old, adaptation.new)
    return conftest + HELPERS
