"""MkDocs hook: the home page (docs/index.md) takes the README's introduction, Quickstart
and "Where to read on", between the README's ``<!-- --8<-- [start:front] -->`` and
``<!-- --8<-- [end:front] -->`` comments, in place of its ``--8<-- "README.md:front"``
line, so the text has one source. The README's links into ``docs/`` are rewritten to be
relative to the site (``docs/versions.md`` becomes ``versions.md``); the strict build
then checks them like any page's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DIRECTIVE = '--8<-- "README.md:front"'
START = "<!-- --8<-- [start:front] -->"
END = "<!-- --8<-- [end:front] -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if DIRECTIVE not in markdown:
        return markdown
    readme = Path(config["config_file_path"]).parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"{readme} must hold the markers {START} and {END} once each")
    front = text.split(START, 1)[1].split(END, 1)[0].strip("\n")
    # [text](docs/page.md#anchor) and ![alt](docs/images/x.png) -> relative to docs/.
    front = re.sub(r"(\]\()docs/", r"\1", front)
    return markdown.replace(DIRECTIVE, front)
