"""Synchronous calls refused inside a running event loop, as DBOS 3.4 refuses them
(its ``check_async``): they would block the loop on a database round trip, and each
has an ``*_async`` twin to await instead."""

from __future__ import annotations

import asyncio


def refuse_running_loop(operation: str) -> None:
    """Raises unless called outside a running event loop.

    Raises:
        RuntimeError: an event loop runs in this thread (DBOS's text, naming
            ``operation``'s ``_async`` twin).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{operation}() was called while an event loop is running. "
        f"Use await {operation}_async(...) instead."
    )
