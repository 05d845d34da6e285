"""Describes a Python API's surface as plain data: what ``inspect`` sees of a name.

One description serves both sides of the DBOS comparison (:mod:`bench.dbos_api`): the
snapshot script runs this module inside DBOS Transact's own virtualenv (where
celery_durable is absent), the comparison runs it on celery_durable, and both produce the
same JSON-able shapes. So this module imports nothing but the standard library (and
click, lazily, for command lines).

A description is a dict:

- ``kind``: ``function``, ``method`` (called on an instance), ``classmethod`` /
  ``staticmethod`` (callable on the class itself), ``property`` (a value read from the
  class or instance, including class properties and plain attributes), ``class``,
  ``typeddict``, ``protocol``, ``enum``, ``literal`` (a ``Literal[...]`` alias),
  ``module``, ``command`` (a click command) or ``value``;
- ``async``: ``"coroutine"``, ``"asyncgen"`` or ``"sync"`` for callables;
- ``parameters``: ``[[name, kind, has_default], ...]`` as ``inspect.signature`` reports
  them (without ``self``/``cls``; ``**kwargs: Unpack[SomeTypedDict]`` expanded into its
  keys), or ``None`` when there is no meaningful signature;
- ``members`` (enum: ``{name: value}``), ``values`` (literal), ``bases`` (exception
  classes: the names in the MRO), ``options`` / ``arguments`` (commands).
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

CALLABLE_KINDS = frozenset({"function", "method", "classmethod", "staticmethod"})
CLASS_CALLABLE_KINDS = frozenset({"classmethod", "staticmethod", "function"})
VALUE_KINDS = frozenset({"property", "value"})


def _typed_dict_keys(annotation: Any) -> list[tuple[str, bool]] | None:
    """The keys of ``Unpack[SomeTypedDict]`` as ``(name, required)``, else None."""
    if typing.get_origin(annotation) is not typing.Unpack:
        return None
    (target,) = typing.get_args(annotation)
    if not typing.is_typeddict(target):
        return None
    required: frozenset[str] = getattr(target, "__required_keys__", frozenset())
    return [(name, name in required) for name in target.__annotations__]


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    for eval_str in (True, False):
        try:
            return inspect.signature(function, eval_str=eval_str)
        except (ValueError, TypeError, NameError, AttributeError):
            continue
    return None


def parameters(function: Callable[..., Any], drop_first: bool = False) -> list[list[Any]] | None:
    """``[[name, kind, has_default], ...]`` of a callable (see the module docstring)."""
    signature = _signature(function)
    if signature is None:
        return None
    listed: list[list[Any]] = []
    for index, parameter in enumerate(signature.parameters.values()):
        if drop_first and index == 0 and parameter.kind is not parameter.VAR_POSITIONAL:
            continue
        keys = (
            _typed_dict_keys(parameter.annotation)
            if parameter.kind is parameter.VAR_KEYWORD
            else None
        )
        if keys is not None:
            listed.extend([name, "KEYWORD_ONLY", not required] for name, required in keys)
            continue
        has_default = parameter.default is not parameter.empty or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        )
        listed.append([parameter.name, parameter.kind.name, has_default])
    return listed


def asyncness(function: Any) -> str:
    """``coroutine``/``asyncgen``/``sync``, looking through ``functools.wraps`` wrappers."""
    seen = 0
    while function is not None and seen < 10:
        if inspect.iscoroutinefunction(function):
            return "coroutine"
        if inspect.isasyncgenfunction(function):
            return "asyncgen"
        function = getattr(function, "__wrapped__", None)
        seen += 1
    return "sync"


_RETURNS_ASYNC = {
    "AsyncIterator": "asyncgen",
    "AsyncGenerator": "asyncgen",
    "AsyncIterable": "asyncgen",
    "Coroutine": "coroutine",
    "Awaitable": "coroutine",
}


def _declared_asyncness(function: Any) -> str:
    """What a plain function's return annotation promises: a ``def`` returning an
    ``AsyncIterator`` is used exactly as an ``async def`` generator (``async for``), one
    returning an ``Awaitable`` as a coroutine function (``await``)."""
    signature = _signature(function)
    if signature is None or signature.return_annotation is signature.empty:
        return "sync"
    annotation = signature.return_annotation
    origin = typing.get_origin(annotation) or annotation
    name = annotation if isinstance(annotation, str) else getattr(origin, "__name__", "")
    return _RETURNS_ASYNC.get(name.split("[", 1)[0].rsplit(".", 1)[-1], "sync")


def _callable(kind: str, function: Any, drop_first: bool) -> dict[str, Any]:
    declared = asyncness(function)
    return {
        "kind": kind,
        "async": declared if declared != "sync" else _declared_asyncness(function),
        "parameters": parameters(function, drop_first=drop_first),
    }


def _static(owner: type, name: str) -> tuple[Any, bool] | None:
    """The raw attribute (no descriptor call) and whether it came from the metaclass."""
    for klass in owner.__mro__:
        if name in vars(klass):
            return vars(klass)[name], False
    for klass in inspect.getmro(type(owner)):
        if klass is not type and name in vars(klass):
            return vars(klass)[name], True
    return None


def describe_member(owner: type, name: str) -> dict[str, Any] | None:
    """How ``owner.name`` (or ``instance.name``) is used, or None if it does not exist."""
    found = _static(owner, name)
    if found is None:
        return None
    raw, on_metaclass = found
    if isinstance(raw, staticmethod):
        return _callable("staticmethod", raw.__func__, drop_first=False)
    if isinstance(raw, classmethod):
        return _callable("classmethod", raw.__func__, drop_first=True)
    if inspect.isfunction(raw):
        # A metaclass's method is called on the class, like a classmethod.
        return _callable("classmethod" if on_metaclass else "method", raw, drop_first=True)
    if isinstance(raw, property) or hasattr(type(raw), "__get__"):
        return {"kind": "property", "async": None, "parameters": None}
    return {"kind": "value", "async": None, "parameters": None}


def public_members(owner: type) -> list[str]:
    """The names a user of ``owner`` may touch: ``dir()`` without underscores."""
    return sorted(name for name in dir(owner) if not name.startswith("_"))


def field_names(record: type) -> set[str]:
    """The fields of a dataclass, TypedDict, NamedTuple or annotated class, and its
    properties (a computed field reads the same)."""
    names: set[str] = set()
    for klass in getattr(record, "__mro__", (record,)):
        names.update(getattr(klass, "__annotations__", {}))
        names.update(getattr(klass, "__dataclass_fields__", {}))
        names.update(getattr(klass, "_fields", ()))
        names.update(getattr(klass, "__slots__", ()) or ())
        names.update(key for key, value in vars(klass).items() if isinstance(value, property))
    return {name for name in names if not name.startswith("_")}


def _is_exception_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def describe_object(obj: Any) -> dict[str, Any]:
    """A module-level name: a class (with its constructor), function, alias or module."""
    if isinstance(obj, types.ModuleType):
        return {"kind": "module", "async": None, "parameters": None}
    if typing.get_origin(obj) is typing.Literal:
        return {
            "kind": "literal",
            "async": None,
            "parameters": None,
            "values": sorted(map(str, typing.get_args(obj))),
        }
    if isinstance(obj, type):
        if issubclass(obj, enum.Enum):
            members = {member.name: _jsonable(member.value) for member in obj}
            return {"kind": "enum", "async": None, "parameters": None, "members": members}
        if typing.is_typeddict(obj):
            return {"kind": "typeddict", "async": None, "parameters": None}
        if getattr(obj, "_is_protocol", False):
            return {"kind": "protocol", "async": None, "parameters": None}
        # A class that keeps object's constructor is not made by its users (a record
        # the library returns): its "signature" () says nothing.
        constructed = obj.__init__ is not object.__init__ or obj.__new__ is not object.__new__
        description: dict[str, Any] = {
            "kind": "class",
            "async": None,
            "parameters": parameters(obj) if constructed else None,
        }
        if _is_exception_class(obj):
            description["bases"] = [klass.__name__ for klass in obj.__mro__]
        return description
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return _callable("function", obj, drop_first=False)
    if callable(obj):
        return _callable("function", obj, drop_first=False)
    return {"kind": "value", "async": None, "parameters": None}


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def module_public_names(module: types.ModuleType) -> list[str]:
    """A module's public names: those defined in it, not the ones it imports."""
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return sorted(names)


def walk_commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command of a click group, with its path of names under the group."""
    import click

    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from walk_commands(command, (*path, name))
        else:
            yield (*path, name), command


def describe_command(command: Any) -> dict[str, Any]:
    """A click command's arguments (in order) and options (every flag spelling)."""
    import click

    arguments = [
        {"name": param.name, "required": bool(param.required)}
        for param in command.params
        if isinstance(param, click.Argument)
    ]
    options = [
        {
            "name": param.name,
            "opts": sorted([*param.opts, *param.secondary_opts]),
            "required": bool(param.required),
            "is_flag": bool(getattr(param, "is_flag", False)),
        }
        for param in command.params
        if isinstance(param, click.Option)
    ]
    return {
        "kind": "command",
        "async": None,
        "parameters": None,
        "arguments": arguments,
        "options": options,
    }
