"""Errors of the configuration, the system database and what is read from it, and of a
caller without the role a function requires."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc

from celery_durable.error.base import DBOSErrorCode, DBOSException


class DBOSInitializationError(DBOSException):
    """The library is not configured, or configured wrongly."""

    _constructed_from = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__(message, DBOSErrorCode.InitializationError)


class DBOSSystemDatabaseError(DBOSException, exc.DBAPIError):
    """The system database could not be reached or refused a statement.

    Also a SQLAlchemy ``DBAPIError``, which is what DBOS Transact raises for the same
    failures (a ported ``except DBAPIError:`` still catches it): ``orig`` is the driver's
    error, ``connection_invalidated`` whether the connection died, from the error it
    was raised from.
    """

    _constructed_from = ("message",)

    def __init__(self, message: str) -> None:
        # Not DBAPIError's constructor (a statement, its parameters and the driver's
        # error): its fields are read from the cause, below.
        self.message = message
        self.dbos_error_code = None
        Exception.__init__(self, message)

    @property
    def orig(self) -> BaseException | None:  # type: ignore[override]
        cause = self.__cause__
        return cause.orig if isinstance(cause, exc.DBAPIError) else cause

    @property
    def connection_invalidated(self) -> bool:  # type: ignore[override]
        cause = self.__cause__
        return isinstance(cause, exc.DBAPIError) and cause.connection_invalidated

    @property
    def statement(self) -> str | None:  # type: ignore[override]
        cause = self.__cause__
        return cause.statement if isinstance(cause, exc.StatementError) else None

    @property
    def params(self) -> Any:  # type: ignore[override]
        cause = self.__cause__
        return cause.params if isinstance(cause, exc.StatementError) else None


class DBOSSchemaMissingError(DBOSSystemDatabaseError):
    """The database has no celery_durable tables, or older ones than this code needs.

    Only ``DBOS.launch()``, ``celery-durable migrate`` and a starting worker create or
    upgrade them; reading never does.
    """


class DBOSNotAuthorizedError(DBOSException):
    """The caller's roles include none of a function's ``@DBOS.required_roles``."""

    _constructed_from = ("msg",)

    def __init__(self, msg: str) -> None:
        self.msg = msg
        super().__init__(msg, DBOSErrorCode.NotAuthorized)


class DBOSSerializationError(DBOSException, TypeError):
    """A value could not be serialized or deserialized.

    Also a ``TypeError``, which is what DBOS Transact raises for a value its serializer
    cannot write (pickle's error, or the portable format's): a ported program's
    ``except TypeError`` still catches it.
    """

    _constructed_from = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RecordedError(DBOSException):
    """A recorded exception that could not be rebuilt as its own class on replay.

    Raised in place of an exception whose class cannot be imported or constructed from
    its recorded arguments. It carries the original class's dotted name and message.

    Attributes:
        type_name: ``module:qualname`` of the original exception class.
        original_message: ``str()`` of the original exception.
    """

    _constructed_from = ("type_name", "original_message")

    def __init__(self, type_name: str, original_message: str) -> None:
        self.type_name = type_name
        self.original_message = original_message
        super().__init__(f"{type_name}: {original_message}")

    def __str__(self) -> str:
        return self.message  # the original exception's words, not a DBOS error's


class DBOSQueryTimeoutError(DBOSException):
    """A listing (``list_workflows``, ``list_queued_workflows``,
    ``list_workflow_steps``) ran past ``observability_query_timeout_sec`` and
    PostgreSQL cancelled it."""

    _constructed_from = ("timeout_seconds",)

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"This query was cancelled after exceeding its {timeout_seconds:g}s statement timeout.",
            DBOSErrorCode.QueryTimeout,
        )
