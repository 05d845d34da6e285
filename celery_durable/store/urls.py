"""Database URLs: every form PostgreSQL's own tools accept, checked and normalised here.

Accepted: ``postgresql://`` and ``postgres://`` URIs (libpq's two schemes), SQLAlchemy's
``postgresql+<driver>://`` forms (always run on psycopg 3), and libpq's key=value
connection strings (``host=db user=app dbname=orders``). Anything else is a
:class:`DBOSInitializationError` of one line that names the problem and never the
password.
"""

from __future__ import annotations

import psycopg
from psycopg import conninfo
from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from celery_durable.error import DBOSInitializationError

_EXAMPLE = "postgresql://user:password@host:5432/dbname"


def _bad(problem: str) -> DBOSInitializationError:
    return DBOSInitializationError(f"Invalid database URL: {problem} (expected {_EXAMPLE})")


def _from_conninfo(text: str) -> URL:
    """A libpq key=value connection string as a URL."""
    try:
        values = conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        # libpq's own message may quote a token of the string: a password, perhaps.
        raise _bad("not a valid key=value connection string") from None
    port = values.pop("port", None)
    if port is not None and not str(port).isdigit():
        raise _bad("the port is not a number")
    host = values.pop("host", None)
    if host is not None and "," in str(host):
        raise _bad("several hosts are supported in URL form only")
    return URL.create(
        "postgresql",
        username=_text(values.pop("user", None)),
        password=_text(values.pop("password", None)),
        host=_text(host),
        port=int(port) if port is not None else None,
        database=_text(values.pop("dbname", None)),
        query={key: str(value) for key, value in values.items()},
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def parse(url: str) -> URL:
    """The URL as SQLAlchemy's ``URL`` (driver ``postgresql``), or a one-line error."""
    if not isinstance(url, str):
        raise _bad(f"it is a {type(url).__name__}, not a string")
    text = url.strip()
    if not text:
        raise _bad("it is empty")
    if "://" not in text:
        if "=" in text:
            return _from_conninfo(text)
        raise _bad("it has no scheme")
    scheme = text.split("://", 1)[0]
    backend = scheme.split("+", 1)[0].lower()
    if backend not in ("postgresql", "postgres"):
        raise _bad(f"scheme {scheme!r} is not PostgreSQL's")
    try:
        parsed = make_url("postgresql" + text[len(backend) :])
    except exc.ArgumentError:
        raise _bad("it cannot be parsed") from None
    except ValueError:
        # SQLAlchemy's int(port) (the message would echo the text after the colon).
        raise _bad("the port is not a number") from None
    return parsed.set(drivername="postgresql")


def normalize(url: str) -> str:
    """The canonical ``postgresql://`` form of any accepted URL (the password kept)."""
    return parse(url).render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The URL for SQLAlchemy, on the psycopg 3 driver."""
    return parse(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return parse(url).render_as_string(hide_password=True)
    except DBOSInitializationError:
        return "<invalid database URL>"
