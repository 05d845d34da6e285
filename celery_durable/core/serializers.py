"""DBOS Transact 3.4's serializer API and its portable JSON format.

``Serializer`` (abstract: ``name``, ``serialize``, ``deserialize``) is what
``DBOSConfig["serializer"]`` and ``DBOSClient(serializer=...)`` accept besides our names
(``"json"``, ``"pickle"``). ``DBOSPortableJSONSerializer`` is DBOS's portable format:
plain JSON that any language reads (datetimes as RFC 3339 UTC strings, dates as ISO
strings, Decimals as strings, tuples and sets as arrays; an error as ``{"name",
"message", "code", "data"}``, read back as :class:`PortableWorkflowError`).

DBOS records each row's format in a ``serialization`` column. Our tables record it in
the text: a portable value is stored as ``!portable:`` followed by the portable JSON,
a portable error as ``!portable-error:`` followed by its JSON. Every serializer of
ours reads both (:func:`loads_portable`), so a process configured for JSON, pickle or
a custom serializer reads a portable row as DBOS does.
"""

from __future__ import annotations

import datetime as dt
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from celery_durable.error import DBOSSerializationError

PORTABLE_PREFIX = "!portable:"
PORTABLE_ERROR_PREFIX = "!portable-error:"
# A custom serializer's text: the marker, its name(), a newline, then its own text.
CUSTOM_PREFIX = "!serializer:"
PORTABLE_JSON = "portable_json"

JsonValue = Any


class WorkflowSerializationFormat(str, Enum):  # noqa: UP042 (DEFAULT is None, as DBOS)
    """``serialization_type=`` of ``DBOS.workflow``, ``send``, ``set_event`` and
    ``write_stream``: ``PORTABLE`` (DBOS's portable JSON), ``NATIVE`` (this
    deployment's own format: tagged JSON, or pickle when configured), ``DEFAULT`` (the
    running workflow's format inside workflow code, else the configured serializer)."""

    PORTABLE = "portable"
    NATIVE = "native"
    DEFAULT = None


@dataclass(eq=False)
class PortableWorkflowError(Exception):
    """An error read from the portable format (as DBOS's): its ``name`` (the type name
    it was raised as), ``message``, ``code`` and ``data``."""

    message: str
    name: str
    code: int | str | None = None
    data: JsonValue | None = None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        # Rebuilt with its fields (a parent records a child's error in its own format).
        return (self.__class__, (self.message, self.name, self.code, self.data))


class Serializer(ABC):
    """DBOS's serializer interface: ``serialize`` a value to text, ``deserialize`` it
    back; ``name`` identifies the format."""

    @abstractmethod
    def serialize(self, data: Any) -> str:
        """The text stored for ``data``."""

    @abstractmethod
    def deserialize(cls, serialized_data: str) -> Any:
        """The value ``serialized_data`` was made from."""

    def name(self) -> str:
        return "custom_serializer"


def _to_rfc3339_utc(moment: dt.datetime) -> str:
    utc = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def portableify(value: Any) -> JsonValue:
    """``value`` as plain JSON values, as DBOS's portable format writes it.

    Raises:
        DBOSSerializationError: a value the portable format has no form for.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return _to_rfc3339_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple | set | frozenset):
        return [portableify(item) for item in value]
    if isinstance(value, BaseException):
        # Inside a value (a step's attempt history, say): its portable error payload.
        return error_data(value)
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise DBOSSerializationError(
                    "Attempt to do portable JSON serialization of a map with non-string keys"
                )
            out[key] = portableify(item)
        return out
    raise DBOSSerializationError(
        f"Object of type {type(value).__name__} is not portable JSON serializable"
    )


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return "<unprintable>"


def error_data(error: BaseException) -> dict[str, JsonValue]:
    """DBOS's portable error payload: ``name``, ``message``, ``code`` (the first of
    ``code``, ``error_code``, ``errno``, ``status``, ``status_code`` that is an int or a
    string) and ``data`` (the first of ``data``, ``details``, ``payload``, ``extra``,
    ``meta``, ``metadata``; as a string if it is not portable)."""
    if isinstance(error, PortableWorkflowError):
        return {
            "name": error.name,
            "message": error.message,
            "code": error.code,
            "data": error.data,
        }
    out: dict[str, JsonValue] = {"name": type(error).__name__, "message": _safe_str(error)}
    out["code"] = None
    for attribute in ("code", "error_code", "errno", "status", "status_code"):
        code = getattr(error, attribute, None)
        if isinstance(code, int | str):
            out["code"] = code
            break
    for attribute in ("data", "details", "payload", "extra", "meta", "metadata"):
        if not hasattr(error, attribute):
            continue
        extra = getattr(error, attribute)
        if callable(extra):
            continue
        try:
            out["data"] = portableify(extra)
        except DBOSSerializationError:
            out["data"] = _safe_str(extra)
        break
    return out


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class PortableSerializer:
    """Our serializer (``dumps``/``loads``) for the portable format, with its markers."""

    def dumps(self, value: Any) -> str:
        if isinstance(value, BaseException):
            return PORTABLE_ERROR_PREFIX + _json(error_data(value))
        return PORTABLE_PREFIX + _json(portableify(value))

    def loads(self, text: str) -> Any:
        found, value = loads_portable(text)
        if not found:
            raise DBOSSerializationError("Not a portable JSON value")
        return value


PORTABLE = PortableSerializer()


def is_portable(text: str | None) -> bool:
    return text is not None and text.startswith((PORTABLE_PREFIX, PORTABLE_ERROR_PREFIX))


def loads_portable(text: str) -> tuple[bool, Any]:
    """``(True, value)`` for a portable row's text, ``(False, None)`` for another.

    A custom serializer's row, read by any other serializer, is ``(True, its text)``:
    as DBOS returns it to a reader that does not know the serializer it names.
    """
    if text.startswith(CUSTOM_PREFIX):
        _, _, own_text = text.partition("\n")
        return True, own_text
    try:
        if text.startswith(PORTABLE_PREFIX):
            return True, json.loads(text[len(PORTABLE_PREFIX) :])
        if text.startswith(PORTABLE_ERROR_PREFIX):
            data = json.loads(text[len(PORTABLE_ERROR_PREFIX) :])
            return True, PortableWorkflowError(
                str(data.get("message", "")),
                str(data.get("name", "Error")),
                data.get("code"),
                data.get("data"),
            )
    except (ValueError, AttributeError) as exc:
        raise DBOSSerializationError(f"Cannot deserialize portable JSON: {exc}") from exc
    return False, None


def portable_inputs(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A workflow's inputs in the portable format's shape."""
    return {"positionalArgs": args, "namedArgs": kwargs}


def native_inputs(recorded: Any) -> dict[str, Any]:
    """Inputs as the executor reads them (``args``, ``kwargs``, ``receiver``), from
    either format's shape."""
    if isinstance(recorded, dict) and ("positionalArgs" in recorded or "namedArgs" in recorded):
        inputs: dict[str, Any] = {
            # A tuple, as DBOS's portable reading gives it.
            "args": tuple(recorded.get("positionalArgs") or ()),
            "kwargs": dict(recorded.get("namedArgs") or {}),
        }
        if recorded.get("receiver") is not None:
            inputs["receiver"] = recorded["receiver"]
        return inputs
    if not isinstance(recorded, dict):
        raise DBOSSerializationError(
            "A workflow's inputs were written by a serializer this process is not "
            "configured with (its text reads as a string): configure the same "
            'config["serializer"] as the process that started it'
        )
    return dict(recorded)


class DBOSPortableJSONSerializer(Serializer):
    """DBOS's portable JSON serializer (``name()`` is ``"portable_json"``): as
    ``DBOSConfig["serializer"]`` it makes every value this deployment writes portable."""

    def name(self) -> str:
        return PORTABLE_JSON

    def deserialize(self, text: str | None) -> Any:
        return None if text is None else json.loads(text)

    def serialize(self, value: Any) -> str:
        return _json(portableify(value))


def _holds_error(value: Any) -> bool:
    if isinstance(value, BaseException):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_error(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_error(item) for item in value.values())
    return False


class CustomSerializer:
    """A DBOS ``Serializer`` as our serializer: its text, as it writes it, after a
    marker naming it (``!serializer:<name>`` and a newline), so a reader configured
    otherwise gets the text itself, as DBOS's does; a portable row is read as portable
    whatever the configured serializer. A row written before the marker existed is
    read with the serializer."""

    def __init__(self, inner: Serializer) -> None:
        self.inner = inner
        self._marker = f"{CUSTOM_PREFIX}{inner.name()}\n"
        if "\n" in str(inner.name()):
            raise DBOSSerializationError(
                f"A serializer's name() must be one line, not {inner.name()!r}"
            )

    def dumps(self, value: Any) -> str:
        try:
            return self._marker + self.inner.serialize(value)
        except Exception as exc:
            if _holds_error(value):
                # An error (or a step's attempt history) it cannot write: the portable
                # payload, which every reader understands, so the outcome is recorded.
                return PORTABLE.dumps(value)
            if isinstance(exc, DBOSSerializationError):
                raise
            raise DBOSSerializationError(
                f"{type(self.inner).__name__}.serialize failed: {exc}"
            ) from exc

    def loads(self, text: str) -> Any:
        if text.startswith(self._marker):
            return self.inner.deserialize(text[len(self._marker) :])
        found, value = loads_portable(text)
        if found:
            return value
        return self.inner.deserialize(text)
