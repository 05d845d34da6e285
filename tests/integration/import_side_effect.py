"""A module no reader may import (tests/integration/test_readers_import_nothing.py): its top-level
code writes a marker file (the path in ``CD_IMPORT_SIDE_EFFECT_MARKER``) and raises
``KeyError``, as a workflow module that reads its configuration at import might."""

from __future__ import annotations

import os
from pathlib import Path

_marker = os.environ.get("CD_IMPORT_SIDE_EFFECT_MARKER")
if _marker:
    Path(_marker).write_text(f"imported by process {os.getpid()}\n")
raise KeyError("CD_IMPORT_SIDE_EFFECT_MARKER")


class SideEffectError(Exception):
    """Never defined: the import fails first."""
