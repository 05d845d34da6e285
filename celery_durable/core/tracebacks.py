"""The traceback recorded with an error: formatted once, bounded, kept on replay.

A failed step attempt or workflow is recorded with the formatted traceback of its
exception (the text of :func:`traceback.format_exception`, cause and context included),
cut to its last :data:`LIMIT_CHARS` characters. The exception rebuilt from a record
carries that text in the attribute :data:`ATTRIBUTE`, which changes neither its type,
its args nor its ``str``, so replay raises what it raised before. Recording it again (an
attempt log rewritten after the next attempt, a replayed error that fails the workflow)
keeps the text of where it was first raised rather than the replay's frames.
"""

from __future__ import annotations

import contextlib
import traceback

ATTRIBUTE = "__celery_durable_traceback__"
# The innermost frames and the message are at the end: a long traceback keeps its end.
LIMIT_CHARS = 8192
CUT_MARK = "[celery_durable: the first {} characters of this traceback were cut]\n"


def recorded_traceback(error: BaseException) -> str | None:
    """The traceback recorded with ``error``, an exception rebuilt from a checkpoint (or
    one already recorded); None when it was recorded without one (before tracebacks were
    kept, or raised nowhere)."""
    text = getattr(error, ATTRIBUTE, None)
    return text if isinstance(text, str) else None


def traceback_to_record(error: BaseException) -> str | None:
    """The text to record with ``error``: the one it already carries, else its live
    traceback formatted and bounded; None for an exception that was never raised.

    Called only when an error is serialized, so the success path formats nothing.
    """
    recorded = recorded_traceback(error)
    if recorded is not None or error.__traceback__ is None:
        return recorded
    try:
        text = "".join(traceback.format_exception(error))
    except Exception:  # A traceback is a diagnostic: never fail the record over it.
        return None
    return bounded(text)


def bounded(text: str) -> str:
    """``text`` if it fits :data:`LIMIT_CHARS`; else its end from a line start, after a
    line saying how much was cut."""
    if len(text) <= LIMIT_CHARS:
        return text
    kept = text[-LIMIT_CHARS:]
    line_start = kept.find("\n") + 1
    if 0 < line_start < len(kept):
        kept = kept[line_start:]
    return CUT_MARK.format(len(text) - len(kept)) + kept


def remember(error: BaseException, text: str) -> None:
    """Attaches recorded traceback ``text`` to a rebuilt ``error``."""
    # An exception class that refuses attributes keeps no traceback.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(error, ATTRIBUTE, text)
