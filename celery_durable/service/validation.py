"""``@DBOS.workflow(validate_args=...)`` helpers, as DBOS 3.4's ``dbos._validation``.

``pydantic_args_validator`` is a marker: ``@DBOS.workflow(validate_args=
pydantic_args_validator)`` builds a validator from the workflow's type hints with
:func:`make_pydantic_args_validator`. pydantic is imported only then (install
``celery-durable[validation]``, as DBOS's ``dbos[validation]``).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from celery_durable.core.serializers import WorkflowSerializationFormat
from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException

_RESUME_ON_NEW_VERSION = (
    "a worker runs the workflows of its own application_version: move older ones with "
    "DBOS.fork_workflow(..., application_version=) or resume them on a worker of theirs"
)

ValidateArgs = Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def pydantic_args_validator(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Marker for ``validate_args``: the decorator replaces it with a real validator."""
    raise NotImplementedError(
        "pydantic_args_validator should not be called directly. "
        "Use make_pydantic_args_validator(func) to create a validator for a specific function."
    )


def make_pydantic_args_validator(
    func: Callable[..., Any], skip_receiver: Callable[[], bool] = lambda: False
) -> ValidateArgs:
    """A ``validate_args`` that validates and coerces arguments against ``func``'s type
    hints with pydantic ``TypeAdapter``s (built at the first call). For a method,
    ``skip_receiver`` says to leave out its first parameter (``self``/``cls``).

    Raises:
        ImportError: pydantic is not installed.
    """
    try:
        import pydantic
    except ImportError as exc:
        raise ImportError(
            "pydantic is required for pydantic_args_validator. "
            "Install it with: pip install pydantic  (or pip install celery-durable[validation])"
        ) from exc
    cache: list[_Adapters] = []

    def validate(
        args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not cache:
            cache.append(_adapters(func, skip_receiver(), pydantic.TypeAdapter))
        return _validate(cache[0], args, kwargs, pydantic.ValidationError)

    return validate


# (named parameters: (name, adapter, default, kind)), (*args's name, adapter),
# (**kwargs's name, adapter).
_Adapters = tuple[list[tuple[str, Any, Any, Any]], tuple[str, Any], tuple[str, Any]]


def _adapters(func: Callable[..., Any], skip_receiver: bool, adapter_type: Any) -> _Adapters:
    params = list(inspect.signature(func).parameters.values())
    if skip_receiver and params:
        params = params[1:]
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = getattr(func, "__annotations__", {})
    named: list[tuple[str, Any, Any, Any]] = []
    var_args: tuple[str, Any] = ("", None)
    var_kwargs: tuple[str, Any] = ("", None)
    for p in params:
        hint = hints.get(p.name)
        adapter = adapter_type(hint) if hint is not None else None
        if p.kind is p.VAR_POSITIONAL:
            var_args = (p.name, adapter)
        elif p.kind is p.VAR_KEYWORD:
            var_kwargs = (p.name, adapter)
        else:
            named.append((p.name, adapter, p.default, p.kind))
    return named, var_args, var_kwargs


def _validate(
    adapters: _Adapters, args: tuple[Any, ...], kwargs: dict[str, Any], invalid: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    named, var_args, var_kwargs = adapters
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    out_args, out_kwargs, errors = list(args), dict(kwargs), []
    provided = set()
    for index, value in enumerate(out_args):
        if index < len(named) and named[index][3] in positional:
            name, adapter = named[index][0], named[index][1]
            provided.add(name)
        else:
            name, adapter = var_args
        if adapter is not None:
            try:
                out_args[index] = adapter.validate_python(value)
            except invalid as e:
                errors.append(f"Argument '{name}' (position {index}): {e}")
    by_name = {n: a for n, a, _, k in named if k is not inspect.Parameter.POSITIONAL_ONLY}
    for key, value in out_kwargs.items():
        adapter = by_name.get(key, var_kwargs[1])
        if key in by_name:  # a positional-only parameter's name goes to **kwargs
            provided.add(key)
        if adapter is not None:
            try:
                out_kwargs[key] = adapter.validate_python(value)
            except invalid as e:
                errors.append(f"Argument '{key}': {e}")
    for name, _, default, _ in named:
        if name not in provided and default is inspect.Parameter.empty:
            errors.append(f"Missing required argument: '{name}'")
    if errors:
        raise ValueError("Argument validation failed for workflow:\n" + "\n".join(errors))
    return tuple(out_args), out_kwargs


def workflow_options(serialization_type: object, auto_upgrade: bool | None) -> bool:
    """Checks ``@DBOS.workflow``'s DBOS 3.4 options; True if the workflow is portable.

    Raises:
        DBOSException: ``auto_upgrade=True`` (not supported), or a bad
            ``serialization_type``.
    """
    if auto_upgrade:
        raise DBOSException(
            "@DBOS.workflow(auto_upgrade=True) is not supported by celery_durable: "
            + _RESUME_ON_NEW_VERSION
        )
    fmt = WorkflowSerializationFormat
    if serialization_type is None or serialization_type in (fmt.DEFAULT, fmt.NATIVE):
        return False
    if serialization_type == fmt.PORTABLE:
        return True
    raise DBOSException(
        "serialization_type must be a WorkflowSerializationFormat (PORTABLE, NATIVE or "
        f"DEFAULT), not {serialization_type!r}"
    )


def resolve_validate_args(
    validate_args: ValidateArgs | None, function: Callable[..., Any], spec: WorkflowSpec
) -> ValidateArgs | None:
    """``validate_args`` as given, or, for the ``pydantic_args_validator`` marker, a
    validator built from ``function``'s hints (a method's receiver left out)."""
    if validate_args is pydantic_args_validator:
        return make_pydantic_args_validator(
            function, lambda: spec.membership.kind in ("instance", "class")
        )
    return validate_args
