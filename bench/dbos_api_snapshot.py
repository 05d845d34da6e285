"""Writes DBOS Transact's public surface as JSON (run inside DBOS's own virtualenv).

    bench/.dbos-venv/bin/python bench/dbos_api_snapshot.py OUT.json

``python -m bench dbos_api --refresh-snapshot`` runs it (making the virtualenv as
:mod:`bench.dbos_transact` does) and commits nothing of DBOS but the resulting names,
parameter lists and kinds: ``bench/data/dbos-api.json``, which :mod:`bench.dbos_api`
compares with celery_durable without needing DBOS installed.

It runs with ``bench/`` as its directory, so it imports :mod:`api_surface` as a
top-level module and never this repository's packages.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from typing import Any

import api_surface
import dbos
from dbos.cli.cli import app

# The classes whose members a DBOS program calls, in the order the table lists them.
OWNERS = (
    "DBOS",
    "DBOSClient",
    "Queue",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "Debouncer",
    "DebouncerClient",
    "SQLAlchemyDatasource",
    "AsyncSQLAlchemyDatasource",
    "Serializer",
    "DBOSPortableJSONSerializer",
)
# The records whose fields (or keys) a DBOS program reads or writes.
RECORDS = ("WorkflowStatus", "StepInfo", "DBOSConfig", "EnqueueOptions")


def items() -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []

    def add(section: str, name: str, description: dict[str, Any]) -> None:
        listed.append({"section": section, "name": name, **description})

    for name in sorted(dbos.__all__):
        add("dbos", name, api_surface.describe_object(getattr(dbos, name)))
    for owner_name in OWNERS:
        owner = getattr(dbos, owner_name)
        for name in api_surface.public_members(owner):
            description = api_surface.describe_member(owner, name)
            assert description is not None, (owner_name, name)
            add(owner_name, name, description)
    for record_name in RECORDS:
        for name in sorted(api_surface.field_names(getattr(dbos, record_name))):
            add(f"{record_name} fields", name, {"kind": "field", "async": None, "parameters": None})
    for name in api_surface.module_public_names(dbos._error):
        add("dbos.error", name, api_surface.describe_object(getattr(dbos._error, name)))
    for path, command in api_surface.walk_commands(app):
        add("dbos CLI", " ".join(path), api_surface.describe_command(command))
    return listed


def main() -> None:
    (out,) = sys.argv[1:]
    document = {
        "about": (
            "DBOS Transact's public surface as inspect sees it; written by "
            "`python -m bench dbos_api --refresh-snapshot` (bench/dbos_api_snapshot.py). "
            "Names, parameter lists and kinds only, nothing of DBOS's code."
        ),
        "dbos_version": version("dbos"),
        "python": platform.python_version(),
        "items": items(),
    }
    with open(out, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1, sort_keys=False)
        file.write("\n")


if __name__ == "__main__":
    main()
