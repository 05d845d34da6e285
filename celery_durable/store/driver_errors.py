"""Turning driver errors into the library's own (messages never carry credentials)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import exc

from celery_durable.error import DBOSSchemaMissingError, DBOSSystemDatabaseError

# undefined_table, invalid_schema_name, undefined_function: the schema is not there.
_SCHEMA_MISSING = frozenset({"42P01", "3F000", "42883"})


def system_error(
    action: str, error: exc.DBAPIError, *, database: str = "System"
) -> DBOSSystemDatabaseError:
    """The library's error for a driver error (``database``: which one, for the message).

    Both databases' failures are :class:`DBOSSystemDatabaseError`: a workflow that meets
    one waits and runs again.
    """
    # str(error.orig) is the driver's message; it never includes the password. On one
    # line: libpq puts a hint on a second ("Is the server running on that host ...").
    detail = " ".join(str(error.orig).split())
    if getattr(error.orig, "sqlstate", None) in _SCHEMA_MISSING:
        return DBOSSchemaMissingError(
            f"{database} database error while {action}: the celery_durable tables are "
            f"missing or out of date ({detail}). Create or upgrade them with "
            "`celery-durable migrate` (or DBOS.launch(), or by starting a worker)"
        )
    return DBOSSystemDatabaseError(f"{database} database error while {action}: {detail}")


def violates(error: BaseException, index: str) -> bool:
    """Whether the driver error under ``error`` (SQLAlchemy's ``orig``, or the cause of
    a :class:`DBOSSystemDatabaseError`) is a unique violation of our index whose name
    ends so."""
    driver = error.orig if isinstance(error, exc.DBAPIError) else error.__cause__
    diag = getattr(driver, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    return getattr(driver, "sqlstate", None) == "23505" and constraint.endswith(index)


@contextlib.contextmanager
def wrap_errors(action: str, *, database: str = "System") -> Iterator[None]:
    try:
        yield
    except exc.DBAPIError as error:
        raise system_error(action, error, database=database) from error
