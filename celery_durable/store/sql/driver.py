"""A statement in the driver's placeholder style, for the statements sent without
SQLAlchemy's compilation."""

from __future__ import annotations

import re

from sqlalchemy import TextClause


def driver_sql(clause: TextClause) -> str:
    """The statement with the driver's placeholders, for ``exec_driver_sql``.

    The hot statements of an execution skip SQLAlchemy's compilation and parameter
    processing (tens of microseconds a statement). The claim goes through
    ``exec_driver_sql`` (SQLAlchemy's events see it); the step checkpoint and the outcome
    go to the driver's cursor directly (``WorkflowExecution``'s listeners see them).
    """
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", clause.text)
