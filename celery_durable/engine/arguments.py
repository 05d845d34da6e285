"""A workflow's recorded inputs, made ready for its function: read in either format,
coerced (portable JSON loses datetimes and dates) or validated (``validate_args``)."""

from __future__ import annotations

import datetime as dt
import inspect
import typing
from typing import Any

from celery_durable.core.serialization import Serializer
from celery_durable.core.serializers import PORTABLE, is_portable, native_inputs
from celery_durable.engine.registry import WorkflowSpec


def load_inputs(spec: WorkflowSpec, text: str, serializer: Serializer) -> dict[str, Any]:
    """``{"args": [...], "kwargs": {...}}`` (and ``receiver``) for ``spec``'s function.

    Raises:
        DBOSSerializationError: the text cannot be read.
        Exception: whatever ``spec.validate_args`` raises (the workflow's error).
    """
    inputs = native_inputs(serializer.loads(text))
    args, kwargs = tuple(inputs["args"]), dict(inputs["kwargs"])
    if spec.validate_args is not None:
        args, kwargs = spec.validate_args(args, kwargs)
    elif is_portable(text):
        args, kwargs = _coerce_to_hints(spec, args, kwargs)
    inputs["args"], inputs["kwargs"] = list(args), dict(kwargs)
    return inputs


def outcome_serializer(inputs_text: str | None, serializer: Serializer) -> Serializer:
    """The format of a workflow's output and error: its inputs' (the row decides, as in
    DBOS: a workflow enqueued portable finishes portable)."""
    return PORTABLE if is_portable(inputs_text) else serializer


def _coerce_to_hints(
    spec: WorkflowSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """As DBOS: a string argument whose parameter is annotated ``datetime`` or ``date``
    is parsed back into one."""
    function = spec.function
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = getattr(function, "__annotations__", {})
    if not hints:
        return args, kwargs
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return args, kwargs
    if spec.membership.kind in ("instance", "class") and params:
        params = params[1:]  # the receiver is not among the recorded arguments
    coerced = [
        _coerce(value, hints.get(params[index].name)) if index < len(params) else value
        for index, value in enumerate(args)
    ]
    return tuple(coerced), {key: _coerce(value, hints.get(key)) for key, value in kwargs.items()}


def _coerce(value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if hint is dt.datetime:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if hint is dt.date:
            return dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    return value
