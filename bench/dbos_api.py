"""DBOS Transact 3.4's public API, item by item, against the installed celery_durable.

    python -m bench dbos_api                     # the counts and the per-item table
    python -m bench dbos_api --markdown          # also rewrites the table in
                                                 # docs/dbos-compatibility.md
    python -m bench dbos_api --refresh-snapshot  # re-read DBOS's surface (pip-installs it)

The items are every name in ``dbos.__all__``; every public member of ``DBOS``,
``DBOSClient``, ``Queue``, the workflow handles, the debouncers, the datasources and the
serializers; the fields of ``WorkflowStatus``, ``StepInfo``, ``DBOSConfig`` and
``EnqueueOptions``; ``dbos.error``'s public names; the ``dbos`` command line's commands.
DBOS's side is the committed snapshot ``bench/data/dbos-api.json`` (written by
:mod:`bench.dbos_api_snapshot` in DBOS's own virtualenv), so this comparison needs
neither DBOS nor the network. Our side is what a port reaches by changing
``from dbos import X`` to ``from celery_durable import X`` (and ``dbos.error`` to
``celery_durable.error``, ``dbos`` on the command line to ``celery-durable``).

Each item is one of:

- **compatible**: the name exists, of the same kind (a method callable the same way, a
  property, a class, an enum with the same members...), with the same async-ness, and
  every call DBOS accepts binds the same way (each parameter by position and by name
  as DBOS allows; for a command, every option spelling and argument);
- **drops optional parameters**: as compatible, but some optional DBOS parameters (or
  option spellings) are not accepted;
- **incompatible**: the name exists but a DBOS program's use of it fails: another kind or
  async-ness, a required parameter missing, a parameter we require that DBOS does not
  have, an enum member or exception base missing;
- **absent**: no such name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import api_surface
from bench.settings import ROOT

NAME = "dbos_api"
SNAPSHOT = ROOT / "bench" / "data" / "dbos-api.json"
SNAPSHOT_SCRIPT = ROOT / "bench" / "dbos_api_snapshot.py"
DOCS_PAGE = ROOT / "docs" / "dbos-compatibility.md"
TABLE_START = "<!-- dbos_api table: start (python -m bench dbos_api --markdown) -->"
TABLE_END = "<!-- dbos_api table: end -->"
ADAPTATIONS_START = "<!-- dbos_suite adaptations: start (python -m bench dbos_api --markdown) -->"
ADAPTATIONS_END = "<!-- dbos_suite adaptations: end -->"

COMPATIBLE = "compatible"
DROPS = "drops optional parameters"
INCOMPATIBLE = "incompatible"
ABSENT = "absent"
STATUSES = (COMPATIBLE, DROPS, INCOMPATIBLE, ABSENT)

_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
_NAMED = ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")


@dataclass(frozen=True)
class Verdict:
    """One DBOS item, our counterpart's name (``""`` when absent), and how they compare."""

    section: str
    item: str
    ours: str
    status: str
    detail: str = ""


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# -- our side ------------------------------------------------------------------------


def _item_id(entry: dict[str, Any]) -> str:
    section, name = entry["section"], entry["name"]
    if section in ("dbos", "dbos.error"):
        return f"{section}.{name}"
    if section == "dbos CLI":
        return f"dbos {name}"
    if section.endswith(" fields"):
        return f"{section.removesuffix(' fields')}.{name}"
    return f"{section}.{name}"


def _our_export(package: Any, name: str, dbos_kind: str) -> Any:
    if dbos_kind == "module":
        try:
            return importlib.import_module(f"{package.__name__}.{name}")
        except ImportError:
            return None
    return getattr(package, name, None)


def _our_command(path: tuple[str, ...]) -> Any:
    from celery_durable.cli import main

    command: Any = main
    for name in path:
        commands = getattr(command, "commands", None)
        if commands is None or name not in commands:
            return None
        command = commands[name]
    return None if hasattr(command, "commands") else command


def counterpart(entry: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Our name for a DBOS item and the description of what is there (None: absent)."""
    import celery_durable
    import celery_durable.error

    section, name = entry["section"], entry["name"]
    if section == "dbos":
        ours = _our_export(celery_durable, name, entry["kind"])
        label = f"celery_durable.{name}"
        return label, None if ours is None else api_surface.describe_object(ours)
    if section == "dbos.error":
        ours = getattr(celery_durable.error, name, None)
        label = f"celery_durable.error.{name}"
        return label, None if ours is None else api_surface.describe_object(ours)
    if section == "dbos CLI":
        path = tuple(name.split())
        command = _our_command(path)
        label = "celery-durable " + name
        return label, None if command is None else api_surface.describe_command(command)
    if section.endswith(" fields"):
        record_name = section.removesuffix(" fields")
        record = getattr(celery_durable, record_name, None)
        label = f"{record_name}.{name}"
        present = record is not None and name in api_surface.field_names(record)
        return label, {"kind": "field"} if present else None
    owner = getattr(celery_durable, section, None)
    label = f"{section}.{name}"
    if not isinstance(owner, type):
        return label, None
    return label, api_surface.describe_member(owner, name)


# -- judging -------------------------------------------------------------------------


def _positional_before_varargs(parameters: list[list[Any]]) -> list[list[Any]]:
    """DBOS's parameters, those before a ``*args`` counted as positional-only.

    ``start_workflow(func, *args, **kwargs)`` could take ``func=`` by keyword, but then no
    positional argument could follow it: every real call passes it by position, so our
    ``start_workflow(workflow, *args, **kwargs)`` accepts every such call.
    """
    kinds = [kind for _, kind, _ in parameters]
    if "VAR_POSITIONAL" not in kinds:
        return parameters
    cut = kinds.index("VAR_POSITIONAL")
    return [
        [name, "POSITIONAL_ONLY" if index < cut else kind, has_default]
        for index, (name, kind, has_default) in enumerate(parameters)
    ]


def judge_parameters(
    theirs: list[list[Any]] | None, ours: list[list[Any]] | None
) -> tuple[str, str]:
    """Whether every call DBOS's signature accepts binds the same way to ours."""
    if theirs is None:
        return COMPATIBLE, ""
    if ours is None:
        return INCOMPATIBLE, "our signature cannot be inspected"
    theirs = _positional_before_varargs(theirs)
    their_positional = [p for p in theirs if p[1] in _POSITIONAL]
    our_positional = [p for p in ours if p[1] in _POSITIONAL]
    our_named = {p[0]: p for p in ours if p[1] in _NAMED}
    our_kinds = {p[1] for p in ours}
    missing_required: list[str] = []
    dropped: list[str] = []
    for name, kind, has_default in theirs:
        problem = ""
        if kind == "VAR_POSITIONAL":
            problem = "" if "VAR_POSITIONAL" in our_kinds else f"*{name}"
        elif kind == "VAR_KEYWORD":
            problem = "" if "VAR_KEYWORD" in our_kinds else f"**{name}"
        else:
            if kind in _POSITIONAL:
                index = next(i for i, p in enumerate(their_positional) if p[0] == name)
                at_index = our_positional[index] if index < len(our_positional) else None
                if at_index is None or (kind != "POSITIONAL_ONLY" and at_index[0] != name):
                    problem = f"{name} (position {index + 1})"
            if kind != "POSITIONAL_ONLY" and name not in our_named:
                problem = name
        if problem:
            (dropped if has_default else missing_required).append(problem)
    their_names = {p[0] for p in theirs}
    required_extra = [
        name
        for index, (name, kind, has_default) in enumerate(ours)
        if not has_default
        and name not in their_names
        and not (
            kind in _POSITIONAL
            and our_positional.index([name, kind, has_default]) < len(their_positional)
            and their_positional[our_positional.index([name, kind, has_default])][1]
            == "POSITIONAL_ONLY"
        )
    ]
    if missing_required or required_extra:
        parts = []
        if missing_required:
            parts.append("missing required: " + ", ".join(missing_required))
        if required_extra:
            parts.append("we require: " + ", ".join(required_extra))
        if dropped:
            parts.append("missing: " + ", ".join(dropped))
        return INCOMPATIBLE, "; ".join(parts)
    if dropped:
        return DROPS, "missing: " + ", ".join(dropped)
    return COMPATIBLE, ""


def judge_command(theirs: dict[str, Any], ours: dict[str, Any]) -> tuple[str, str]:
    """Whether every ``dbos`` invocation of the command parses the same way with ours."""
    problems: list[str] = []
    dropped: list[str] = []
    their_arguments, our_arguments = theirs["arguments"], ours["arguments"]
    for index, argument in enumerate(their_arguments):
        if index >= len(our_arguments):
            (problems if argument["required"] else dropped).append(argument["name"].upper())
    problems.extend(
        f"we require {argument['name'].upper()}"
        for argument in our_arguments[len(their_arguments) :]
        if argument["required"]
    )
    our_options = {spelling: option for option in ours["options"] for spelling in option["opts"]}
    their_spellings = {spelling for option in theirs["options"] for spelling in option["opts"]}
    for option in theirs["options"]:
        missing = [spelling for spelling in option["opts"] if spelling not in our_options]
        if missing:
            (problems if option["required"] else dropped).append("/".join(missing))
            continue
        if our_options[option["opts"][0]]["is_flag"] != option["is_flag"]:
            problems.append(f"{option['opts'][0]} is {'not ' * option['is_flag']}a flag here")
    problems.extend(
        f"we require {option['opts'][0]}"
        for option in ours["options"]
        if option["required"] and not set(option["opts"]) & their_spellings
    )
    if problems:
        return INCOMPATIBLE, "; ".join(problems + [f"missing: {m}" for m in dropped])
    if dropped:
        return DROPS, "missing: " + ", ".join(dropped)
    return COMPATIBLE, ""


def _judge_class(theirs: dict[str, Any], ours: dict[str, Any]) -> tuple[str, str]:
    if ours["kind"] == "function" and "bases" not in theirs:
        # A factory in place of a class (a context manager made by a function, say) is
        # called the same way; only isinstance() and subclassing could tell them apart.
        if ours["async"] != "sync":
            return INCOMPATIBLE, f"ours is {ours['async']}, DBOS's a class"
        return judge_parameters(theirs["parameters"] or [], ours["parameters"])
    if ours["kind"] not in ("class", "protocol"):
        return INCOMPATIBLE, f"ours is a {ours['kind']}"
    missing_bases = [
        base
        for base in theirs.get("bases", [])
        if base in ("Exception", "BaseException", "DBOSException", "DBOSBaseException")
        and base not in ours.get("bases", [])
    ]
    if missing_bases:
        return INCOMPATIBLE, "ours does not derive from " + ", ".join(missing_bases)
    if theirs["parameters"] is None:
        return COMPATIBLE, ""
    return judge_parameters(theirs["parameters"], ours["parameters"] or [])


def judge(theirs: dict[str, Any], ours: dict[str, Any] | None) -> tuple[str, str]:
    """Classifies one item (see the module docstring); returns (status, what differs)."""
    if ours is None:
        return ABSENT, ""
    their_kind, our_kind = theirs["kind"], ours["kind"]
    if their_kind == "field":
        return COMPATIBLE, ""
    if their_kind == "command":
        return judge_command(theirs, ours)
    if their_kind in api_surface.CALLABLE_KINDS:
        if our_kind not in api_surface.CALLABLE_KINDS and our_kind != "class":
            return INCOMPATIBLE, f"ours is a {our_kind}, DBOS's a {their_kind}"
        if their_kind in ("classmethod", "staticmethod") and our_kind == "method":
            return INCOMPATIBLE, "ours is called on an instance, DBOS's on the class"
        if our_kind != "class" and theirs["async"] != ours["async"]:
            return INCOMPATIBLE, f"ours is {ours['async']}, DBOS's {theirs['async']}"
        return judge_parameters(theirs["parameters"], ours["parameters"])
    if their_kind in api_surface.VALUE_KINDS:
        if our_kind in api_surface.VALUE_KINDS:
            return COMPATIBLE, ""
        return INCOMPATIBLE, f"ours is a {our_kind}, DBOS's a {their_kind}"
    if their_kind == "enum":
        if our_kind != "enum":
            return INCOMPATIBLE, f"ours is a {our_kind}, DBOS's an Enum"
        wrong = [
            name
            for name, value in theirs["members"].items()
            if ours["members"].get(name, object()) != value
        ]
        if wrong:
            return INCOMPATIBLE, "members missing or different: " + ", ".join(wrong)
        return COMPATIBLE, ""
    if their_kind == "literal":
        if our_kind != "literal":
            return INCOMPATIBLE, f"ours is a {our_kind}, DBOS's a Literal"
        missing = sorted(set(theirs["values"]) - set(ours["values"]))
        if missing:
            return INCOMPATIBLE, "values missing: " + ", ".join(missing)
        return COMPATIBLE, ""
    if their_kind == "typeddict":
        if our_kind != "typeddict":
            return INCOMPATIBLE, f"ours is a {our_kind}, DBOS's a TypedDict"
        return COMPATIBLE, ""
    if their_kind in ("class", "protocol"):
        return _judge_class(theirs, ours)
    if their_kind == "module":
        return (COMPATIBLE, "") if our_kind == "module" else (INCOMPATIBLE, f"ours: {our_kind}")
    return (COMPATIBLE, "") if our_kind == their_kind else (INCOMPATIBLE, f"ours: {our_kind}")


def compare(snapshot: dict[str, Any] | None = None) -> list[Verdict]:
    """Every item of the snapshot, judged against the installed celery_durable."""
    document = snapshot if snapshot is not None else load_snapshot()
    verdicts = []
    for entry in document["items"]:
        label, ours = counterpart(entry)
        status, detail = judge(entry, ours)
        verdicts.append(
            Verdict(
                section=entry["section"],
                item=_item_id(entry),
                ours=label if ours is not None else "",
                status=status,
                detail=detail,
            )
        )
    return verdicts


def counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    tally = Counter(verdict.status for verdict in verdicts)
    return {status: tally.get(status, 0) for status in STATUSES}


# -- output --------------------------------------------------------------------------


def summary(verdicts: list[Verdict], dbos_version: str) -> str:
    tally = counts(verdicts)
    total = len(verdicts)
    share = 100 * tally[COMPATIBLE] / total if total else 0.0
    return (
        f"DBOS Transact {dbos_version}: {tally[COMPATIBLE]} of {total} items compatible "
        f"({share:.0f}%), {tally[DROPS]} drop optional parameters, "
        f"{tally[INCOMPATIBLE]} incompatible, {tally[ABSENT]} absent"
    )


def section_counts(verdicts: list[Verdict]) -> list[tuple[str, dict[str, int]]]:
    sections: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        sections.setdefault(verdict.section, []).append(verdict)
    return [(section, counts(listed)) for section, listed in sections.items()]


def text_table(verdicts: list[Verdict]) -> str:
    width = max(len(verdict.item) for verdict in verdicts)
    lines = []
    section: str | None = None
    for verdict in verdicts:
        if verdict.section != section:
            section = verdict.section
            lines.append(f"\n[{section}]")
        detail = f"  {verdict.detail}" if verdict.detail else ""
        lines.append(f"  {verdict.item:<{width}}  {verdict.status}{detail}")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(verdicts: list[Verdict], dbos_version: str) -> str:
    """The generated part of docs/dbos-compatibility.md: counts, then one table a section."""
    lines = [
        f"Generated by `python -m bench dbos_api --markdown` from the snapshot "
        f"`bench/data/dbos-api.json`. {summary(verdicts, dbos_version)}.",
        "",
        "| Section | Compatible | Drops optional parameters | Incompatible | Absent |",
        "|---|---:|---:|---:|---:|",
    ]
    for section, tally in section_counts(verdicts):
        lines.append(
            f"| {section} | {tally[COMPATIBLE]} | {tally[DROPS]} | "
            f"{tally[INCOMPATIBLE]} | {tally[ABSENT]} |"
        )
    current: str | None = None
    for verdict in verdicts:
        if verdict.section != current:
            current = verdict.section
            lines += [
                "",
                f"### {current}",
                "",
                "| DBOS 3.4 | celery_durable | Status | What differs |",
                "|---|---|---|---|",
            ]
        ours = f"`{verdict.ours}`" if verdict.ours else "—"
        lines.append(
            f"| `{_cell(verdict.item)}` | {_cell(ours)} | {verdict.status} | "
            f"{_cell(verdict.detail)} |"
        )
    return "\n".join(lines)


_ROW = re.compile(r"^\| `(?P<item>[^`]+)` \| [^|]*(?:\\\|[^|]*)* \| (?P<status>[a-z ]+) \|")


def documented_statuses(page: Path = DOCS_PAGE) -> dict[str, str]:
    """The status each item has in the page's generated table: ``{item: status}``."""
    statuses = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match and match["status"] in STATUSES:
            statuses[match["item"]] = match["status"]
    return statuses


def adaptations_list() -> str:
    """The conftest adaptations of ``python -m bench dbos_suite``, one item each."""
    from bench.dbos_suite_conftest import ADAPTATIONS

    return "\n".join(f"{number}. {a.why}" for number, a in enumerate(ADAPTATIONS, start=1))


def _replace_between(text: str, start_marker: str, end_marker: str, generated: str) -> str:
    start, end = text.index(start_marker), text.index(end_marker)
    return text[: start + len(start_marker)] + "\n\n" + generated + "\n\n" + text[end:]


def write_markdown(verdicts: list[Verdict], dbos_version: str, page: Path = DOCS_PAGE) -> None:
    """Replaces the generated parts between the page's markers (the rest is by hand):
    the table, and the list of the suite's conftest adaptations."""
    text = page.read_text(encoding="utf-8")
    text = _replace_between(text, TABLE_START, TABLE_END, markdown_table(verdicts, dbos_version))
    text = _replace_between(text, ADAPTATIONS_START, ADAPTATIONS_END, adaptations_list())
    page.write_text(text, encoding="utf-8")


def refresh_snapshot() -> None:
    """Re-reads DBOS's surface in its own virtualenv (made as bench.dbos_transact does)."""
    from bench.dbos_transact import VENV, ensure_venv

    reason = ensure_venv()
    if reason is not None:
        raise SystemExit(f"cannot refresh the snapshot: {reason}")
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), str(SNAPSHOT_SCRIPT), str(SNAPSHOT)],
        cwd=ROOT / "bench",  # not ROOT: the script must not import this repository
        check=True,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench dbos_api", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help=f"rewrite the generated table in {DOCS_PAGE.relative_to(ROOT)}",
    )
    parser.add_argument(
        "--refresh-snapshot",
        action="store_true",
        help=f"re-read DBOS's surface into {SNAPSHOT.relative_to(ROOT)} first",
    )
    args = parser.parse_args(argv)
    if args.refresh_snapshot:
        refresh_snapshot()
    document = load_snapshot()
    verdicts = compare(document)
    print(text_table(verdicts))
    print()
    for section, tally in section_counts(verdicts):
        print(f"{section:<28} " + ", ".join(f"{tally[s]} {s}" for s in STATUSES))
    print()
    print(summary(verdicts, document["dbos_version"]))
    if args.markdown:
        write_markdown(verdicts, document["dbos_version"])
        print(f"wrote the table in {DOCS_PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0
