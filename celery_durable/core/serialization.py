"""Serialization of inputs, outputs and errors for checkpoints.

JSON by default. Values JSON cannot carry are written as tagged objects
(``{"__cd__": "datetime", "v": "..."}``) so that datetimes, dates, times, timedeltas,
UUIDs, Decimals, bytes, tuples, sets and dicts with non-string keys round-trip exactly.
Exceptions are recorded as their class's import path, constructor arguments and
message, and the traceback of one that was raised (:mod:`celery_durable.core.tracebacks`);
on replay they are rebuilt as their own class where possible, otherwise as
:class:`~celery_durable.error.RecordedError`, carrying the recorded traceback.

Reading never imports a module because the data names it (a reader, say the dashboard,
would run that module's top-level code): a class is rebuilt only from a module the
process has already imported (a worker has its workflows' modules, and what they
import), or from one the application lists in ``config["importable_error_modules"]``.

Rows in DBOS's portable JSON format (:mod:`celery_durable.core.serializers`) are read by
every serializer here, whatever the configured one.

Pickle is available only by explicit opt-in (``config["serializer"] = "pickle"``); a
JSON-configured process refuses to unpickle anything it reads. Pickle drops
``__traceback__``, so the pickler puts the traceback's text into each raised exception's
pickled attributes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import importlib
import io
import json
import pickle
import sys
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal, Protocol

from celery_durable.core import serializers, tracebacks
from celery_durable.error import DBOSSerializationError, RecordedError

_TAG = "__cd__"
_PICKLE_PREFIX = "!pickle:"
_SCALARS = (str, int, float, bool, type(None))

SerializerName = Literal["json", "pickle"]
# What config["serializer"] and DBOSClient(serializer=) take: a name, or a DBOS Serializer.
SerializerChoice = SerializerName | serializers.Serializer


class Serializer(Protocol):
    """Turns values into the text stored in PostgreSQL, and back."""

    def dumps(self, value: Any) -> str: ...

    def loads(self, text: str) -> Any: ...


def to_jsonable(value: Any) -> Any:
    """Converts ``value`` to plain JSON types, tagging what JSON cannot carry.

    Raises:
        DBOSSerializationError: ``value`` contains an object of an unsupported type.
    """
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        if all(type(key) is str for key in value) and _TAG not in value:
            return {key: to_jsonable(item) for key, item in value.items()}
        return {_TAG: "dict", "v": [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [to_jsonable(item) for item in value]}
    if isinstance(value, BaseException):
        return _exception_to_jsonable(value)
    # datetime is a subclass of date: test it first.
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {_TAG: "uuid", "v": str(value)}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, bytes | bytearray):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset):
        return {_TAG: type(value).__name__, "v": [to_jsonable(item) for item in value]}
    raise DBOSSerializationError(
        f"Object of type {type(value).__module__}.{type(value).__qualname__} is not "
        "serializable to JSON (use JSON types, datetime, UUID, Decimal or bytes, or opt in "
        'to config["serializer"] = "pickle")'
    )


def _decode_object(obj: dict[str, Any], importable: frozenset[str] = frozenset()) -> Any:
    """``json.loads`` object hook: rebuilds one tagged object (children are done);
    ``importable``: the modules an exception's class may be imported from."""
    tag = obj.get(_TAG)
    if tag is None:
        return obj
    payload: Any = obj.get("v")
    match tag:
        case "dict":
            return {_freeze(key): value for key, value in payload}
        case "tuple":
            return tuple(payload)
        case "datetime":
            return dt.datetime.fromisoformat(payload)
        case "date":
            return dt.date.fromisoformat(payload)
        case "time":
            return dt.time.fromisoformat(payload)
        case "timedelta":
            days, seconds, microseconds = payload
            return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        case "uuid":
            return uuid.UUID(payload)
        case "decimal":
            return Decimal(payload)
        case "bytes":
            return base64.b64decode(payload)
        case "set":
            return set(payload)
        case "frozenset":
            return frozenset(payload)
        case "exception":
            return _exception_from_jsonable(obj, importable)
    raise DBOSSerializationError(f"Unknown serialized type tag {tag!r}")


def _freeze(key: Any) -> Any:
    # A dict key that came back as a list was a tuple key (lists are unhashable).
    return tuple(key) if isinstance(key, list) else key


def _exception_to_jsonable(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    args: Any = None
    try:
        reduced = exc.__reduce__()
        if isinstance(reduced, tuple) and reduced[0] is cls:
            args = to_jsonable(list(reduced[1]))
    except (DBOSSerializationError, TypeError):
        args = None  # Rebuilt as RecordedError on replay; the message is kept.
    recorded: dict[str, Any] = {
        _TAG: "exception",
        "type": f"{cls.__module__}:{cls.__qualname__}",
        "args": args,
        "message": str(exc),
    }
    # An optional field: records written before it, and readers of the release before
    # (which ignore it), keep working.
    if (text := tracebacks.traceback_to_record(exc)) is not None:
        recorded["traceback"] = text
    return recorded


def _exception_from_jsonable(obj: dict[str, Any], importable: frozenset[str]) -> BaseException:
    rebuilt = _rebuild_exception(obj, importable)
    text = obj.get("traceback")
    if isinstance(text, str):
        tracebacks.remember(rebuilt, text)
    return rebuilt


def _rebuild_exception(obj: dict[str, Any], importable: frozenset[str]) -> BaseException:
    type_name: str = obj["type"]
    message: str = obj.get("message", "")
    args = obj.get("args")
    cls = _exception_class(type_name, importable)
    if cls is None or args is None:
        return RecordedError(type_name, message)
    try:
        return cls(*args)
    except Exception:
        return RecordedError(type_name, message)


def _exception_class(type_name: str, importable: frozenset[str]) -> type[BaseException] | None:
    """The class ``module:qualname`` names, if its module is imported already (or may be
    imported: listed in ``importable``); None otherwise, or if anything fails (the
    error is then a RecordedError: reading history never fails on what it reads)."""
    module_name, _, qualname = type_name.partition(":")
    try:
        target: Any = sys.modules.get(module_name)
        if target is None and module_name in importable:
            target = importlib.import_module(module_name)
        if target is None:
            return None
        for part in qualname.split("."):
            target = getattr(target, part)
    except Exception:  # an allowed module's top-level code may raise anything
        return None
    if isinstance(target, type) and issubclass(target, BaseException):
        return target
    return None


class JsonSerializer:
    """The default: JSON text with tagged extensions; never unpickles.

    Args:
        importable_error_modules: Modules that reading may import to rebuild a recorded
            exception's class (others must be imported already).
    """

    def __init__(self, importable_error_modules: Iterable[str] = ()) -> None:
        self._object_hook = functools.partial(
            _decode_object, importable=frozenset(importable_error_modules)
        )

    def dumps(self, value: Any) -> str:
        return json.dumps(to_jsonable(value), separators=(",", ":"), allow_nan=True)

    def loads(self, text: str) -> Any:
        found, portable = serializers.loads_portable(text)
        if found:
            return portable
        if text.startswith(_PICKLE_PREFIX):
            raise DBOSSerializationError(
                "Refusing to unpickle a checkpoint: this process is configured for JSON "
                '(set config["serializer"] = "pickle" to read pickled checkpoints)'
            )
        try:
            return json.loads(text, object_hook=self._object_hook)
        except ValueError as exc:
            raise DBOSSerializationError(f"Cannot deserialize checkpoint: {exc}") from exc


class _TracebackPickler(pickle.Pickler):
    """Pickles a raised exception with its traceback's text among its attributes.

    Pickle drops ``__traceback__``; unpickling sets the pickled attributes back, so the
    rebuilt exception carries the text where the JSON path puts it, and a reader of the
    release before sees one more attribute and nothing else. Only exceptions reach this
    hook (the pickler handles plain containers and scalars before calling it), and only
    a raised one that pickles with plain ``BaseException`` state gets the text.
    """

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, BaseException):
            return NotImplemented
        if type(obj).__setstate__ is not BaseException.__setstate__:
            return NotImplemented  # Its own state format: leave it alone.
        reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            return NotImplemented
        state = reduced[2] if len(reduced) > 2 else None
        if not (state is None or isinstance(state, dict)):
            return NotImplemented
        text = tracebacks.traceback_to_record(obj)
        if text is None:
            return NotImplemented
        return (reduced[0], reduced[1], {**(state or {}), tracebacks.ATTRIBUTE: text}, *reduced[3:])


class PickleSerializer:
    """Opt-in pickle (any picklable object); reads JSON checkpoints too (unpickling
    imports what the pickle names: pickle is for data the application trusts)."""

    def __init__(self, importable_error_modules: Iterable[str] = ()) -> None:
        self._json = JsonSerializer(importable_error_modules)

    def dumps(self, value: Any) -> str:
        buffer = io.BytesIO()
        try:
            _TracebackPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        except Exception as exc:
            raise DBOSSerializationError(f"Cannot pickle value: {exc}") from exc
        return _PICKLE_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")

    def loads(self, text: str) -> Any:
        if text.startswith(_PICKLE_PREFIX):
            return pickle.loads(base64.b64decode(text[len(_PICKLE_PREFIX) :]))
        return self._json.loads(text)


class PortableConfigured:
    """``config["serializer"] = DBOSPortableJSONSerializer()``: writes DBOS's portable
    format; reads it, and the tagged JSON written before (as DBOS reads each row in its
    own format), never pickle."""

    def __init__(self, importable_error_modules: Iterable[str] = ()) -> None:
        self._json = JsonSerializer(importable_error_modules)

    def dumps(self, value: Any) -> str:
        return serializers.PORTABLE.dumps(value)

    def loads(self, text: str) -> Any:
        return self._json.loads(text)  # portable rows first (JsonSerializer.loads)


def writes_portable(serializer: Serializer) -> bool:
    """Whether ``serializer`` is the deployment's DBOS portable JSON serializer (its
    workflows' inputs then take the portable format's shape, as in DBOS)."""
    return isinstance(serializer, PortableConfigured)


def make_serializer(
    name: SerializerChoice, importable_error_modules: Iterable[str] = ()
) -> Serializer:
    """Returns the serializer configured by ``config["serializer"]`` (and
    ``config["importable_error_modules"]``): a name, or a DBOS ``Serializer`` instance
    (DBOS's portable JSON serializer writes the portable format with its markers)."""
    if isinstance(name, serializers.Serializer):
        if name.name() == serializers.PORTABLE_JSON:
            return PortableConfigured(importable_error_modules)
        return serializers.CustomSerializer(name)
    if name == "json":
        return JsonSerializer(importable_error_modules)
    if name == "pickle":
        return PickleSerializer(importable_error_modules)
    raise DBOSSerializationError(
        f'Unknown serializer {name!r}: use "json", "pickle" or a dbos.Serializer instance'
    )


def native_serializer(
    configured: Serializer, importable_error_modules: Iterable[str] = ()
) -> Serializer:
    """``WorkflowSerializationFormat.NATIVE``: the configured serializer when it is one
    of ours (JSON or pickle), else our JSON."""
    if isinstance(configured, JsonSerializer | PickleSerializer):
        return configured
    return JsonSerializer(importable_error_modules)


def writer_for(
    serialization_type: object, configured: Serializer, portable_default: bool
) -> Serializer:
    """The serializer a ``serialization_type=`` asks for (DBOS's
    ``WorkflowSerializationFormat``, or its value): ``DEFAULT``/None is the running
    workflow's format (``portable_default``) else ``configured``.

    Raises:
        DBOSSerializationError: not a ``WorkflowSerializationFormat``.
    """
    fmt = serializers.WorkflowSerializationFormat
    if serialization_type is None or serialization_type == fmt.DEFAULT:
        return serializers.PORTABLE if portable_default else configured
    if serialization_type == fmt.PORTABLE:
        return serializers.PORTABLE
    if serialization_type == fmt.NATIVE:
        return native_serializer(configured)
    raise DBOSSerializationError(
        f"serialization_type must be a WorkflowSerializationFormat (PORTABLE, NATIVE or "
        f"DEFAULT), not {serialization_type!r}"
    )
