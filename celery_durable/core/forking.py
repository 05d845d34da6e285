"""Fork's start step: one rule for the API, the CLI and the dashboard (DBOS 3.4's).

Steps are numbered from 1 (``list_workflow_steps``' ``function_id``). A fork replays the
operations before ``start_step`` and runs the rest again: 1 re-runs everything, and a
number past the last step re-runs nothing (every checkpoint is copied and replayed), as
in DBOS. DBOS's ``fork_workflow`` takes a number below 1 as 1; so does the API, for code
written for DBOS. What a person types (the CLI's ``--step``, the dashboard's field) must
be a whole number from 1.
"""

from __future__ import annotations

from celery_durable.error import DBOSException

RULE = "the step to fork from is a whole number from 1 (1 re-runs everything)"

# Past every function_id (a 32-bit column): larger numbers mean the same.
_PAST_EVERY_STEP = 2**31 - 1


def start_step(value: object) -> int:
    """The API's ``start_step``, as DBOS takes it: any integer, below 1 meaning 1.

    Raises:
        DBOSException: not an integer.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise DBOSException(f"{RULE}, not {value!r}")
    return min(max(value, 1), _PAST_EVERY_STEP)


def typed_start_step(text: str) -> int:
    """A start step a person typed (CLI, dashboard): a whole number from 1.

    Raises:
        DBOSException: anything else, with :data:`RULE`.
    """
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise DBOSException(f"{RULE}, not {text!r}")
    return start_step(int(value))
