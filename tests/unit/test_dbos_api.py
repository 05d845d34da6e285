"""DBOS Transact 3.4's API, item by item (``python -m bench dbos_api``): the compatible
count only rises, and every item that is not compatible is listed as such in
docs/dbos-compatibility.md, so no item stops being compatible without a word.

Reads the committed snapshot of DBOS's surface (``bench/data/dbos-api.json``): no
network, no DBOS installation. When items land, raise ``COMPATIBLE_AT_LEAST`` and
regenerate the page's table with ``python -m bench dbos_api --markdown``.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import dbos_api

# The ratchet: the compatible count measured when it was last raised.
COMPATIBLE_AT_LEAST = 447


@pytest.fixture(scope="module")
def verdicts() -> list[dbos_api.Verdict]:
    return dbos_api.compare()


def test_the_snapshot_holds_dbos_3_4s_whole_surface() -> None:
    snapshot = dbos_api.load_snapshot()
    assert snapshot["dbos_version"].startswith("3.4.")
    items = [(entry["section"], entry["name"]) for entry in snapshot["items"]]
    assert len(items) == len(set(items)) == 447
    sections = {section for section, _ in items}
    assert {"dbos", "DBOS", "DBOSClient", "Queue", "dbos.error", "dbos CLI"} <= sections


def test_the_compatible_count_does_not_fall(verdicts: list[dbos_api.Verdict]) -> None:
    compatible = dbos_api.counts(verdicts)[dbos_api.COMPATIBLE]
    assert compatible >= COMPATIBLE_AT_LEAST, dbos_api.summary(verdicts, "3.4")


def test_every_item_not_compatible_is_listed_in_the_docs(
    verdicts: list[dbos_api.Verdict],
) -> None:
    documented = dbos_api.documented_statuses()
    unlisted = [
        f"{verdict.item}: {verdict.status} {verdict.detail}".strip()
        for verdict in verdicts
        if verdict.status != dbos_api.COMPATIBLE
        and documented.get(verdict.item, dbos_api.COMPATIBLE) == dbos_api.COMPATIBLE
    ]
    assert unlisted == [], "run `python -m bench dbos_api --markdown`"


def test_the_docs_list_the_suites_conftest_adaptations() -> None:
    assert dbos_api.adaptations_list() in dbos_api.DOCS_PAGE.read_text(encoding="utf-8")


# The judging rules, on signatures written out here.


def _p(*specs: str) -> list[list[Any]]:
    """``"name"`` positional-or-keyword, ``"name="`` with a default, ``"*name"`` keyword-only
    with a default, ``"/name"`` positional-only, ``"*args"``/``"**kw"`` variadic."""
    listed: list[list[Any]] = []
    for spec in specs:
        if spec.startswith("**"):
            listed.append([spec[2:], "VAR_KEYWORD", True])
        elif spec == "*args":
            listed.append(["args", "VAR_POSITIONAL", True])
        elif spec.startswith("*"):
            listed.append([spec[1:], "KEYWORD_ONLY", True])
        elif spec.startswith("/"):
            listed.append([spec[1:], "POSITIONAL_ONLY", False])
        else:
            listed.append([spec.rstrip("="), "POSITIONAL_OR_KEYWORD", spec.endswith("=")])
    return listed


@pytest.mark.parametrize(
    ("theirs", "ours", "status"),
    [
        (_p("a", "b="), _p("a", "b="), dbos_api.COMPATIBLE),
        (_p("a", "b="), _p("a", "b=", "*extra"), dbos_api.COMPATIBLE),
        (_p("a", "b="), _p("a"), dbos_api.DROPS),
        # b is accepted by keyword, not at its position.
        (_p("a", "b="), _p("a", "*b"), dbos_api.DROPS),
        (_p("a", "b="), _p("b"), dbos_api.INCOMPATIBLE),
        (_p("a"), _p("a", "required"), dbos_api.INCOMPATIBLE),
        (_p("wfid"), _p("workflow_id"), dbos_api.INCOMPATIBLE),
        # Before *args a parameter is passed by position: its name does not matter.
        (_p("func", "*args", "**kwargs"), _p("workflow", "*args", "**kwargs"), dbos_api.COMPATIBLE),
        (_p("func", "*args", "**kwargs"), _p("workflow", "*args"), dbos_api.DROPS),
        (_p("/x"), _p("y"), dbos_api.COMPATIBLE),
    ],
)
def test_parameters_are_judged_by_the_calls_dbos_accepts(
    theirs: list[list[Any]], ours: list[list[Any]], status: str
) -> None:
    assert dbos_api.judge_parameters(theirs, ours)[0] == status


def test_async_ness_and_kind_must_match() -> None:
    method = {"kind": "classmethod", "async": "coroutine", "parameters": []}
    assert dbos_api.judge(method, {**method, "async": "sync"})[0] == dbos_api.INCOMPATIBLE
    assert dbos_api.judge(method, {**method, "kind": "method"})[0] == dbos_api.INCOMPATIBLE
    assert dbos_api.judge(method, {**method, "kind": "property"})[0] == dbos_api.INCOMPATIBLE
    assert dbos_api.judge(method, None)[0] == dbos_api.ABSENT
    enum = {"kind": "enum", "async": None, "parameters": None, "members": {"A": 1}}
    assert dbos_api.judge(enum, {**enum, "members": {"A": 1, "B": 2}})[0] == dbos_api.COMPATIBLE
    assert dbos_api.judge(enum, {**enum, "members": {"A": 2}})[0] == dbos_api.INCOMPATIBLE
    not_an_enum = {"kind": "class", "parameters": None}
    assert dbos_api.judge(enum, not_an_enum)[0] == dbos_api.INCOMPATIBLE


def test_commands_are_judged_by_their_arguments_and_every_option_spelling() -> None:
    def command(*options: tuple[list[str], bool, bool], arguments: int = 1) -> dict[str, Any]:
        return {
            "kind": "command",
            "arguments": [{"name": f"arg{i}", "required": True} for i in range(arguments)],
            "options": [
                {"name": opts[0], "opts": opts, "required": required, "is_flag": flag}
                for opts, required, flag in options
            ],
        }

    dbos = command((["--sys-db-url", "-s"], False, False), (["--sort-desc"], False, True))
    same = command((["--sys-db-url", "-s"], False, False), (["--sort-desc"], False, True))
    assert dbos_api.judge(dbos, same)[0] == dbos_api.COMPATIBLE
    short_missing = command((["--sys-db-url"], False, False), (["--sort-desc"], False, True))
    assert dbos_api.judge(dbos, short_missing) == (dbos_api.DROPS, "missing: -s")
    not_a_flag = command((["--sys-db-url", "-s"], False, False), (["--sort-desc"], False, False))
    assert dbos_api.judge(dbos, not_a_flag)[0] == dbos_api.INCOMPATIBLE
    no_argument = command((["--sys-db-url", "-s"], False, False), arguments=0)
    assert dbos_api.judge(dbos, no_argument)[0] == dbos_api.INCOMPATIBLE
