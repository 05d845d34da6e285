"""The README as a front page: its test command is the one CI runs, it stays short, and
its links reach files that exist (MkDocs checks the links of docs/, not the README's)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# [text](target) and ![alt](target), not inside code.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.DOTALL)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    demo, tests = _bash_blocks(README.read_text())[:2]
    assert "celery-durable demo" in demo
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines, "the README's test command must appear verbatim in .ci/run"


def test_the_readme_is_a_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 300
    # It says how to read the documentation site locally.
    assert ".venv/bin/mkdocs serve" in text


def test_the_readme_links_reach_existing_files() -> None:
    broken = []
    for target in _LINK.findall(_prose(README.read_text())):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # an external URL, or an anchor of the README itself
        path = target.split("#", 1)[0]
        if not (ROOT / path).exists():
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(page.relative_to(ROOT / "docs")) for page in (ROOT / "docs").rglob("*.md"))
    missing = [page for page in pages if f": {page}" not in nav]
    assert missing == []
